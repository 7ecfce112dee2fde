"""``sitechat ingest`` and ``sitechat demo``: documents in, through the job queue."""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from sitechat.cli.common import (
    DEMO_ORG_NAME,
    CliError,
    app,
    clean_errors,
    run,
    with_index_if_free,
)
from sitechat.domain import DEMO_CHATBOT_ID
from sitechat.ingestion.crawl import MAX_DEPTH_LIMIT, MAX_PAGES_LIMIT, CrawlOptions
from sitechat.ingestion.jobs import IngestionJobs, Upload
from sitechat.ingestion.netguard import parse_networks
from sitechat.ingestion.runner import JobRunner

# --- ingestion ------------------------------------------------------------------------------

SUPPORTED_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf"}
_SUPPORTED_LIST = ", ".join(sorted(SUPPORTED_SUFFIXES))
PROGRESS_POLL_SECONDS = 0.2
WAIT_HINT_SECONDS = 10.0


def is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def expand_paths(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise CliError(f"{path}: no such file or directory")
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)
            )
        else:
            files.append(path)
    return files


def _interactive() -> bool:
    return sys.stdout.isatty()


@dataclass(slots=True)
class Submitted:
    label: str  # the file or URL, as given
    document: Any
    before: str  # its content hash before this run: unchanged when it is the same after


async def ingest_sources(
    services: Any,
    chatbot_id: str,
    files: list[Path],
    urls: list[str],
    *,
    owns_index: bool,
    crawl: CrawlOptions | None = None,
    allowed_networks: list[str] | None = None,
) -> tuple[int, int]:
    """Queue ``files`` and ``urls`` as ingestion jobs and wait until they end; returns
    (indexed or unchanged, failed). With the index open here the jobs run in this process;
    otherwise the process that holds the index (a running server) runs them.

    On a terminal a progress bar runs and only failures are printed; otherwise (pipes, CI,
    tests) every source gets a line.
    """
    jobs: IngestionJobs = services.ingestion_jobs
    submitted: list[Submitted] = []
    for file in files:
        upload = Upload(await anyio.Path(file).read_bytes(), filename=file.name)
        document = await jobs.submit_upload(chatbot_id, upload)
        submitted.append(Submitted(str(file), document, document.content_hash))
    for url in urls:
        document = await jobs.submit_url(
            chatbot_id, url, crawl=crawl, allowed_networks=allowed_networks
        )
        submitted.append(Submitted(url, document, document.content_hash))
    if not submitted:
        return 0, 0
    open_jobs = await jobs.queue.open_jobs([item.document.id for item in submitted])
    async with anyio.create_task_group() as tg:
        if owns_index:
            runner = JobRunner(
                jobs.queue,
                jobs.execute,
                on_requeued=jobs.requeued,
                concurrency=services.settings.ingestion_concurrency,
                poll_seconds=0.2,
            )
            tg.start_soon(functools.partial(runner.run, only=[job.id for job in open_jobs]))
        await _follow(jobs, submitted, waiting_on_server=not owns_index)
        tg.cancel_scope.cancel()
    ok = failed = 0
    quiet = _interactive() and len(submitted) > 1
    for item in submitted:
        done = await services.store.get_document(chatbot_id, item.document.id)
        if done is None or done.status != "done":
            failed += 1
            reason = done.error if done is not None else "deleted while it was indexed"
            typer.secho(f"  failed   {item.label}: {reason}", err=True, fg=typer.colors.RED)
            continue
        ok += 1
        if quiet:
            continue
        if item.document.source_type == "site" or done.source_type == "site":
            pages = (done.metadata.get("progress") or {}).get("pages_done")
            detail = f"{pages} pages, " if pages is not None else ""
            typer.echo(f"  indexed  {item.label} ({detail}{done.chunk_count} chunks)")
        else:
            state = "unchanged" if done.content_hash == item.before else "indexed "
            typer.echo(f"  {state} {item.label} ({done.chunk_count} chunks)")
    return ok, failed


async def _follow(
    jobs: IngestionJobs, submitted: list[Submitted], *, waiting_on_server: bool
) -> None:
    """Until every document's job has ended, with a progress bar on a terminal."""
    ids = [item.document.id for item in submitted]
    interactive = _interactive() and len(submitted) > 1
    started = time.monotonic()
    hinted = False
    bar = typer.progressbar(length=len(ids), label="ingesting", file=sys.stderr)
    if interactive:
        bar.__enter__()
    try:
        shown = 0
        while True:
            open_ids = {job.document_id for job in await jobs.queue.open_jobs(ids)}
            finished = len(ids) - len(open_ids)
            if interactive and finished > shown:
                bar.update(finished - shown)
                shown = finished
            if not open_ids:
                return
            if waiting_on_server and not hinted and time.monotonic() - started > WAIT_HINT_SECONDS:
                typer.echo(
                    "waiting for the running server to index (the embedded index is open "
                    "there; its job runner picks the work up)",
                    err=True,
                )
                hinted = True
            await anyio.sleep(PROGRESS_POLL_SECONDS)
    finally:
        if interactive:
            bar.__exit__(None, None, None)


@app.command()
@clean_errors
def ingest(
    chatbot_id: Annotated[str, typer.Argument(help="The chatbot to add the documents to.")],
    sources: Annotated[
        list[str],
        typer.Argument(help=f"Files, folders ({_SUPPORTED_LIST}) or http(s) URLs."),
    ],
    crawl: Annotated[
        bool, typer.Option("--crawl", help="Ingest the whole site of each URL.")
    ] = False,
    sitemap: Annotated[
        bool, typer.Option("--sitemap", help="With --crawl: take the pages from the sitemap.")
    ] = False,
    max_pages: Annotated[int, typer.Option(min=1, max=MAX_PAGES_LIMIT)] = 50,
    max_depth: Annotated[int, typer.Option(min=0, max=MAX_DEPTH_LIMIT)] = 2,
    allow_network: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-network",
            help="Also fetch from this private network (CIDR), e.g. 10.0.0.0/8. Repeatable.",
        ),
    ] = None,
) -> None:
    """Ingest documents (files, folders, web pages or whole sites) into a chatbot."""
    urls = [s for s in sources if is_url(s)]
    files = expand_paths([Path(s) for s in sources if not is_url(s)])
    if not files and not urls:
        raise CliError(f"no supported files ({_SUPPORTED_LIST}) or URLs in the given sources")
    if sitemap and not crawl:
        raise CliError("--sitemap goes with --crawl")
    try:
        networks = list(allow_network or [])
        parse_networks(networks)
    except ValueError as exc:
        raise CliError(f"--allow-network: {exc}") from None
    options = (
        CrawlOptions(max_pages=max_pages, max_depth=max_depth, use_sitemap=sitemap)
        if crawl
        else None
    )

    async def work(services: Any, owns_index: bool) -> tuple[int, int]:
        if await services.store.get_chatbot(chatbot_id) is None:
            raise CliError(f"no chatbot with id {chatbot_id}")
        return await ingest_sources(
            services,
            chatbot_id,
            files,
            urls,
            owns_index=owns_index,
            crawl=options,
            allowed_networks=networks,
        )

    ok, failed = run(with_index_if_free(work))
    typer.echo(f"{ok} documents ready, {failed} failed")
    if failed:
        raise typer.Exit(code=1)


# --- demo -----------------------------------------------------------------------------------


def find_docs_dir() -> Path:
    for candidate in (Path.cwd() / "docs", Path(__file__).resolve().parents[3] / "docs"):
        if candidate.is_dir():
            return candidate
    raise CliError("cannot find the docs/ folder to seed the demo from")


@app.command()
@clean_errors
def demo() -> None:
    """Seed the demo: an org and the chatbot 'demo' answering from sitechat's own docs."""
    docs = find_docs_dir()
    files = expand_paths([docs])

    async def work(services: Any, owns_index: bool) -> tuple[int, int]:
        store = services.store
        if await store.get_chatbot(DEMO_CHATBOT_ID) is None:
            org = await store.create_org(DEMO_ORG_NAME)
            await store.create_chatbot(
                org.id,
                chatbot_id=DEMO_CHATBOT_ID,
                name="sitechat demo",
                greeting="Hi! Ask me anything about sitechat: embedding, the API, configuration.",
                starter_questions=(
                    "How do I embed the widget?",
                    "How does streaming work?",
                    "Which models can I use?",
                ),
                theme={"primary_color": "#2563eb", "position": "bottom-right"},
            )
            typer.echo(f"created the demo chatbot '{DEMO_CHATBOT_ID}'")
        return await ingest_sources(services, DEMO_CHATBOT_ID, files, [], owns_index=owns_index)

    ok, failed = run(with_index_if_free(work))
    typer.echo(f"demo ready: {ok} documents, {failed} failed")
