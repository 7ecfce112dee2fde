"""Ingestion jobs end to end: real storage (SQLite), the real Qdrant Edge store, pages served
on loopback, the job queue in the database with a runner claiming from it. Status,
progress, failures that stay with their document, deletes, and runners that stop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from sitechat.config import Settings
from sitechat.errors import Conflict
from sitechat.ingestion.crawl import CrawlOptions
from sitechat.ingestion.fetch import FetchPolicy
from sitechat.ingestion.jobs import IngestionJobs, Upload
from sitechat.ingestion.runner import JobRunner
from sitechat.services import Services
from tests.conftest import seed_chatbot
from tests.support.pdfgen import make_pdf

from .site import Site


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    # No runner of its own: each test runs the jobs with the fetch policy it chose.
    running = await Services.start(settings, run_jobs=False)
    await seed_chatbot(running, "bot")
    yield running
    await running.aclose()


@asynccontextmanager
async def with_runner(
    services: Services, policy: FetchPolicy | None = None
) -> AsyncIterator[IngestionJobs]:
    """Jobs submitted through the result run on a runner of their own, as in a server."""
    queue = services.ingestion_jobs.queue
    jobs = IngestionJobs(services.ingestor, queue, fetch_policy=policy)
    runner = JobRunner(queue, jobs.execute, on_requeued=jobs.requeued, poll_seconds=0.05)
    jobs.on_queued = runner.wake
    task = asyncio.create_task(runner.run())
    try:
        yield jobs
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def jobs(services: Services, policy: FetchPolicy) -> AsyncIterator[IngestionJobs]:
    async with with_runner(services, policy) as running:
        yield running


async def finished(jobs: IngestionJobs, document_id: str) -> object:
    await jobs.wait(document_id)
    document = await jobs.ingestor.store.get_document("bot", document_id)
    assert document is not None
    return document


async def titles_found(services: Services, query: str) -> set[str]:
    return {hit.chunk.title for hit in await services.vectors.search("bot", query, 10)}


async def test_an_upload_is_queued_then_indexed_with_progress(
    jobs: IngestionJobs, services: Services
) -> None:
    text = "# Warranty\n\n## Coverage\n\nThe kettle carries a five-year warranty.\n"
    queued = await jobs.submit_upload("bot", Upload(text.encode(), filename="warranty.md"))
    assert queued.status == "queued" and queued.metadata["job"]["submitted_at"]
    done = await finished(jobs, queued.id)
    assert done.status == "done" and done.error is None  # type: ignore[attr-defined]
    assert done.chunk_count >= 1  # type: ignore[attr-defined]
    assert done.metadata["progress"]["chunks"] == done.chunk_count  # type: ignore[attr-defined]
    assert {"started_at", "finished_at"} <= set(done.metadata["job"])  # type: ignore[attr-defined]
    assert "Warranty" in await titles_found(services, "kettle warranty years")


async def test_a_corrupt_pdf_fails_alone_and_leaves_the_other_documents_intact(
    jobs: IngestionJobs, services: Services
) -> None:
    before = await services.vectors.count("bot")
    broken = await jobs.submit_upload(
        "bot", Upload(b"%PDF-1.7\n" + bytes(range(256)) * 20, filename="manual.pdf")
    )
    good = await jobs.submit_upload(
        "bot", Upload(make_pdf(["The kettle boils a litre in ninety seconds."]), filename="k.pdf")
    )
    failed = await finished(jobs, broken.id)
    assert failed.status == "failed"  # type: ignore[attr-defined]
    assert "PDF" in failed.error  # type: ignore[attr-defined]
    assert (await finished(jobs, good.id)).status == "done"  # type: ignore[attr-defined]
    assert await services.vectors.count("bot") > before
    assert "Returns" in await titles_found(services, "return refund days")  # seeded earlier


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (Upload(b"   \n\n ", filename="blank.md"), "empty"),
        (Upload(b"PK\x03\x04binary", filename="sheet.xlsx"), "Unsupported file type"),
        (Upload(b"<html><body><nav>menu</nav></body></html>", filename="x.html"), "no readable"),
    ],
)
async def test_bad_files_fail_with_a_clear_reason(
    jobs: IngestionJobs, upload: Upload, reason: str
) -> None:
    document = await finished(jobs, (await jobs.submit_upload("bot", upload)).id)
    assert document.status == "failed" and reason in document.error  # type: ignore[attr-defined]


async def test_unchanged_content_is_a_no_op_and_changed_content_replaces_chunks(
    jobs: IngestionJobs, services: Services
) -> None:
    first = Upload(b"The office opens at nine in the morning.", filename="hours.txt")
    original = await finished(jobs, (await jobs.submit_upload("bot", first)).id)
    again = await finished(jobs, (await jobs.submit_upload("bot", first)).id)
    assert again.id == original.id  # type: ignore[attr-defined]
    assert again.content_hash == original.content_hash  # type: ignore[attr-defined]
    changed = dataclasses.replace(first, data=b"The office opens at ten since the renovation.")
    updated = await finished(jobs, (await jobs.submit_upload("bot", changed)).id)
    assert updated.id == original.id and updated.status == "done"  # type: ignore[attr-defined]
    hits = await services.vectors.search("bot", "office opens", 5)
    texts = [h.chunk.text for h in hits if h.chunk.document_id == original.id]  # type: ignore[attr-defined]
    assert texts == ["The office opens at ten since the renovation."]
    documents = [d for d in await services.store.list_documents("bot") if d.title == "hours"]
    assert len(documents) == 1, "one document per source, not one per upload"


async def test_deleting_a_document_removes_its_chunks(
    jobs: IngestionJobs, services: Services
) -> None:
    upload = Upload(b"Parking is free for visitors of the showroom.", filename="parking.txt")
    document = await finished(jobs, (await jobs.submit_upload("bot", upload)).id)
    assert "parking" in await titles_found(services, "parking showroom")
    assert await jobs.ingestor.delete_document("bot", document.id)  # type: ignore[attr-defined]
    assert "parking" not in await titles_found(services, "parking showroom")
    assert await services.store.get_document("bot", document.id) is None  # type: ignore[attr-defined]


async def test_a_url_is_fetched_and_indexed(
    jobs: IngestionJobs, services: Services, site: Site
) -> None:
    site.html("/kettle", "The Kettle 3000", "It boils water with a whistle.")
    document = await finished(jobs, (await jobs.submit_url("bot", site.url("/kettle"))).id)
    assert document.status == "done" and document.title == "The Kettle 3000"  # type: ignore[attr-defined]
    assert document.url == site.url("/kettle") and document.source_type == "html"  # type: ignore[attr-defined]
    [hit] = [h for h in await services.vectors.search("bot", "whistle", 3)]
    assert hit.chunk.url == site.url("/kettle")


async def test_a_crawl_reports_progress_and_each_page_is_a_document(
    jobs: IngestionJobs, services: Services, site: Site
) -> None:
    site.html("/", "Home", "Welcome to the kettle shop.", links=("/a", "/b", "/gone"))
    site.html("/a", "Descaling", "Descale the kettle with vinegar every month.")
    site.html("/b", "Spare lids", "Spare lids cost seven euros.")
    root = await jobs.submit_url("bot", site.url("/"), crawl=CrawlOptions(max_depth=1))
    done = await finished(jobs, root.id)
    assert done.status == "done" and done.source_type == "site"  # type: ignore[attr-defined]
    progress = done.metadata["progress"]  # type: ignore[attr-defined]
    assert progress == {
        "pages_total": 4,
        "pages_done": 3,
        "pages_failed": 1,
        "chunks": done.chunk_count,  # type: ignore[attr-defined]
    }
    pages = [
        d for d in await services.store.list_documents("bot") if d.metadata.get("parent") == root.id
    ]
    assert {p.title for p in pages} == {"Home", "Descaling", "Spare lids", site.url("/gone")}
    [gone] = [p for p in pages if p.status == "failed"]
    assert "HTTP 404" in (gone.error or "")
    assert "Descaling" in await titles_found(services, "descale vinegar")

    assert await jobs.ingestor.delete_document("bot", root.id)
    remaining = {d.id for d in await services.store.list_documents("bot")}
    assert remaining.isdisjoint({p.id for p in pages} | {root.id})
    assert "Descaling" not in await titles_found(services, "descale vinegar")


async def test_a_private_address_fails_the_job_without_a_request(
    services: Services, site: Site
) -> None:
    async with with_runner(services) as strict:  # the default policy: loopback is refused
        site.html("/", "Home", "internal")
        document = await finished(strict, (await strict.submit_url("bot", site.url("/"))).id)
    assert document.status == "failed" and "private" in document.error  # type: ignore[attr-defined]
    assert site.hits == []


async def test_the_same_source_cannot_run_twice_at_once(jobs: IngestionJobs, site: Site) -> None:
    site.html("/slow", "Slow", "Eventually.")
    site.pages["/slow"].delay = 1.0
    first = await jobs.submit_url("bot", site.url("/slow"))
    with pytest.raises(Conflict):
        await jobs.submit_url("bot", site.url("/slow"))
    assert (await finished(jobs, first.id)).status == "done"  # type: ignore[attr-defined]


async def test_a_stopped_runner_puts_its_job_back_and_the_next_runner_finishes_it(
    services: Services, policy: FetchPolicy, site: Site
) -> None:
    site.html("/slow", "Slow", "Eventually.")
    site.pages["/slow"].delay = 2.0
    async with with_runner(services, policy) as first:
        document = await first.submit_url("bot", site.url("/slow"))
        await asyncio.sleep(0.5)  # claimed and fetching when the runner stops
    stored = await services.store.get_document("bot", document.id)
    assert stored is not None and stored.status == "queued"
    async with with_runner(services, policy) as second:
        assert (await finished(second, document.id)).status == "done"  # type: ignore[attr-defined]


async def test_a_job_can_be_queued_in_one_process_and_run_by_another(
    services: Services, policy: FetchPolicy
) -> None:
    """What the CLI does beside a server: it only queues; the server's runner indexes."""
    queued_only = services.ingestion_jobs  # this Services has no runner
    upload = Upload(b"# Lids\n\nSpare lids cost seven euros.\n", filename="lids.md")
    document = await queued_only.submit_upload("bot", upload)
    assert await queued_only.running(document.id)
    async with with_runner(services, policy) as server:
        assert (await finished(server, document.id)).status == "done"  # type: ignore[attr-defined]
    assert "Lids" in await titles_found(services, "spare lids euros")
