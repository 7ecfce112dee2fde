"""The ``sitechat`` command line: serve, seed the demo, manage orgs, chatbots and documents.

Every command builds its clients from ``Settings`` (environment and ``.env``), does its work
and closes them. Errors print one line on stderr and exit with status 1.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import anyio
import typer

from sitechat.config import Settings
from sitechat.domain import DEMO_CHATBOT_ID
from sitechat.errors import SitechatError
from sitechat.ingestion.crawl import MAX_DEPTH_LIMIT, MAX_PAGES_LIMIT, CrawlOptions
from sitechat.ingestion.fetch import FetchPolicy
from sitechat.ingestion.jobs import IngestionJobs
from sitechat.ingestion.netguard import AddressPolicy, parse_networks

app = typer.Typer(
    help="sitechat: website chatbots grounded in your documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(
    help="Organisations (tenants) and their admin API keys.", no_args_is_help=True
)
chatbot_app = typer.Typer(help="Chatbots.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(chatbot_app, name="chatbot")
app.add_typer(db_app, name="db")

P = ParamSpec("P")
T = TypeVar("T")

DEMO_ORG_NAME = "Demo"


class CliError(Exception):
    """A failure to report in one line."""


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def clean_errors(func: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except CliError as exc:
            raise fail(str(exc)) from None
        except SitechatError as exc:
            raise fail(exc.message) from None
        except KeyboardInterrupt:
            raise typer.Exit(code=130) from None
        except Exception as exc:
            logging.getLogger("sitechat.cli").debug("command failed", exc_info=True)
            raise fail(f"{type(exc).__name__}: {exc}") from None

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def with_services(work: Callable[[Any], Awaitable[T]]) -> T:
    from sitechat.services import Services

    services = await Services.start(Settings())
    try:
        return await work(services)
    finally:
        await services.aclose()


# --- serve ----------------------------------------------------------------------------------


@app.command()
@clean_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API, the widget and the demo page."""
    import uvicorn

    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "sitechat.api.app:factory",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=False,  # client IPs are taken from trusted proxies by the app itself
    )


# --- db -------------------------------------------------------------------------------------


@db_app.command("upgrade")
@clean_errors
def db_upgrade() -> None:
    """Apply the database migrations."""
    from sitechat.storage.database import Database

    async def work() -> None:
        database = Database.from_settings(Settings())
        await database.start(migrate=True)
        await database.close()

    run(work())
    typer.echo("database is up to date")


# --- orgs -----------------------------------------------------------------------------------


@org_app.command("create")
@clean_errors
def org_create(name: Annotated[str, typer.Argument(help="The organisation's name.")]) -> None:
    """Create an organisation and print its first admin API key (shown once)."""
    if not name.strip():
        raise CliError("the name must not be empty")

    async def work(services: Any) -> tuple[Any, str]:
        org = await services.store.create_org(name.strip())
        _record, key = await services.store.create_api_key(org.id, "cli")
        return org, key

    org, key = run(with_services(work))
    typer.echo(f"org id:  {org.id}")
    typer.echo(f"api key: {key}")
    typer.echo("Store this key now: it is not shown again.", err=True)


# --- chatbots -------------------------------------------------------------------------------


@chatbot_app.command("create")
@clean_errors
def chatbot_create(
    org_id: Annotated[str, typer.Option("--org", help="The owning organisation's id.")],
    name: Annotated[str, typer.Option(help="The chatbot's name.")],
    chatbot_id: Annotated[str | None, typer.Option("--id", help="A chosen id.")] = None,
    system_prompt: Annotated[str, typer.Option(help="Instructions for the model.")] = "",
    provider: Annotated[str | None, typer.Option(help="openai, local or extractive.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for the provider.")] = None,
    allowed_origins: Annotated[
        list[str] | None,
        typer.Option("--allowed-origin", help="A website that may embed it (repeat for several)."),
    ] = None,
    any_origin: Annotated[
        bool, typer.Option("--any-origin", help="Let every website embed it.")
    ] = False,
    visitor_token: Annotated[
        bool, typer.Option(help="Require the widget's short-lived visitor token.")
    ] = True,
) -> None:
    """Create a chatbot in an organisation and print its id."""
    from sitechat.gate.origins import InvalidOrigin, normalize_origin

    if provider not in (None, "openai", "local", "extractive"):
        raise CliError("--provider must be openai, local or extractive")
    if any_origin and allowed_origins:
        raise CliError("use --any-origin or --allowed-origin, not both")
    try:
        origins = [normalize_origin(o) for o in allowed_origins or []]
    except InvalidOrigin as exc:
        raise CliError(f"--allowed-origin: {exc}") from exc
    policy = {"any_origin": any_origin, "require_visitor_token": visitor_token}

    async def work(services: Any) -> Any:
        if await services.store.get_org(org_id) is None:
            raise CliError(f"no organisation with id {org_id}")
        chatbot = await services.store.create_chatbot(
            org_id,
            name=name,
            chatbot_id=chatbot_id,
            system_prompt=system_prompt,
            provider=provider,
            model=model,
            allowed_origins=origins,
            settings=policy,
        )
        await services.chatbot_changed(chatbot.id)  # running servers drop a cached "unknown"
        return chatbot

    chatbot = run(with_services(work))
    typer.echo(chatbot.id)


# --- ingestion ------------------------------------------------------------------------------

SUPPORTED_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf"}
_SUPPORTED_LIST = ", ".join(sorted(SUPPORTED_SUFFIXES))
PROGRESS_POLL_SECONDS = 0.5


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


async def ingest_files(services: Any, chatbot_id: str, files: list[Path]) -> tuple[int, int]:
    """Ingest ``files`` one after another; returns (indexed or unchanged, failed).

    On a terminal a progress bar runs and only failures are printed; otherwise (pipes, CI,
    tests) every file gets a line.
    """
    ok = failed = 0
    interactive = _interactive() and len(files) > 1
    bar = typer.progressbar(length=len(files), label="ingesting", file=sys.stderr)
    if interactive:
        bar.__enter__()
    try:
        for file in files:
            try:
                result = await services.ingestor.ingest_bytes(
                    chatbot_id, await anyio.Path(file).read_bytes(), filename=file.name
                )
            except SitechatError as exc:
                failed += 1
                typer.secho(f"  failed   {file}: {exc.message}", err=True, fg=typer.colors.RED)
                continue
            finally:
                if interactive:
                    bar.update(1)
            ok += 1
            if not interactive:
                state = "indexed " if result.changed else "unchanged"
                typer.echo(f"  {state} {file} ({result.document.chunk_count} chunks)")
    finally:
        if interactive:
            bar.__exit__(None, None, None)
    return ok, failed


async def ingest_urls(
    services: Any,
    chatbot_id: str,
    urls: list[str],
    *,
    crawl: CrawlOptions | None,
    allowed_networks: list[str],
) -> tuple[int, int]:
    """Fetch (or crawl) ``urls`` as ingestion jobs and wait for them, showing progress."""
    policy = FetchPolicy(addresses=AddressPolicy(parse_networks(allowed_networks)))
    jobs = IngestionJobs(services.ingestor, fetch_policy=policy)
    ok = failed = 0
    try:
        for url in urls:
            document = await jobs.submit_url(chatbot_id, url, crawl=crawl)
            await _follow_job(jobs, document, crawl)
            done = await services.store.get_document(chatbot_id, document.id)
            progress = (done.metadata.get("progress") or {}) if done else {}
            if done is None or done.status != "done":
                failed += 1
                reason = done.error if done is not None else "deleted"
                typer.secho(f"  failed   {url}: {reason}", err=True, fg=typer.colors.RED)
                continue
            ok += 1
            pages = progress.get("pages_done")
            detail = f"{pages} pages, " if crawl is not None and pages is not None else ""
            typer.echo(f"  indexed  {url} ({detail}{done.chunk_count} chunks)")
    finally:
        await jobs.aclose()
    return ok, failed


async def _follow_job(jobs: IngestionJobs, document: Any, crawl: CrawlOptions | None) -> None:
    if crawl is None or not _interactive():
        await jobs.wait(document.id)
        return
    store = jobs.ingestor.store
    shown = 0
    with typer.progressbar(length=crawl.max_pages, label="crawling", file=sys.stderr) as bar:
        while jobs.running(document.id):
            with anyio.move_on_after(PROGRESS_POLL_SECONDS):
                await jobs.wait(document.id)
            current = await store.get_document(document.chatbot_id, document.id)
            total = ((current.metadata.get("progress") or {}) if current else {}).get(
                "pages_total", 0
            )
            if total > shown:
                bar.update(total - shown)
                shown = total


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

    async def work(services: Any) -> tuple[int, int]:
        if await services.store.get_chatbot(chatbot_id) is None:
            raise CliError(f"no chatbot with id {chatbot_id}")
        ok, failed = await ingest_files(services, chatbot_id, files)
        if urls:
            more_ok, more_failed = await ingest_urls(
                services, chatbot_id, urls, crawl=options, allowed_networks=networks
            )
            ok, failed = ok + more_ok, failed + more_failed
        return ok, failed

    ok, failed = run(with_services(work))
    typer.echo(f"{ok} documents ready, {failed} failed")
    if failed:
        raise typer.Exit(code=1)


# --- demo -----------------------------------------------------------------------------------


def find_docs_dir() -> Path:
    for candidate in (Path.cwd() / "docs", Path(__file__).resolve().parents[2] / "docs"):
        if candidate.is_dir():
            return candidate
    raise CliError("cannot find the docs/ folder to seed the demo from")


@app.command()
@clean_errors
def demo() -> None:
    """Seed the demo: an org and the chatbot 'demo' answering from sitechat's own docs."""
    docs = find_docs_dir()
    files = expand_paths([docs])

    async def work(services: Any) -> tuple[int, int]:
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
        return await ingest_files(services, DEMO_CHATBOT_ID, files)

    ok, failed = run(with_services(work))
    typer.echo(f"demo ready: {ok} documents, {failed} failed")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
