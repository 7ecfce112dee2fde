"""The ingestion job queue on SQLite, PostgreSQL and PostgreSQL behind PgBouncer: each job is
claimed by exactly one runner, however many claim at once; a dead runner's jobs come back."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sitechat.domain import Document
from sitechat.storage import Database, Store
from sitechat.storage.jobs import MAX_ATTEMPTS, JobQueue


async def a_document(store: Store, title: str = "Guide") -> Document:
    if await store.get_chatbot("demo") is None:
        org = await store.create_org("Acme")
        await store.create_chatbot(org.id, name="Demo bot", chatbot_id="demo")
    return await store.create_document(
        "demo", title=title, url=None, source_type="markdown", content_hash=""
    )


async def test_a_queued_job_is_claimed_once_with_its_payload_and_bytes(
    store: Store, database: Database
) -> None:
    queue = JobQueue(database)
    document = await a_document(store)
    queued = await queue.enqueue(
        document_id=document.id,
        chatbot_id="demo",
        kind="upload",
        payload={"filename": "guide.md"},
        data=b"# Guide\n\nHello.",
    )
    assert queued.status == "queued" and queued.attempts == 0
    claimed = await queue.claim("runner-a")
    assert claimed is not None and claimed.id == queued.id
    assert claimed.status == "running" and claimed.worker == "runner-a"
    assert claimed.attempts == 1 and claimed.started_at is not None
    assert claimed.payload == {"filename": "guide.md"} and claimed.data == b"# Guide\n\nHello."
    assert await queue.claim("runner-b") is None
    assert await queue.depth() == 0


async def test_many_runners_claiming_at_once_never_take_the_same_job(
    store: Store, database: Database
) -> None:
    queue = JobQueue(database)
    document = await a_document(store)
    queued = [
        await queue.enqueue(document_id=document.id, chatbot_id="demo", kind="url", payload={})
        for _ in range(12)
    ]
    assert await queue.depth() == 12
    claims = await asyncio.gather(*(queue.claim(f"runner-{i % 4}") for i in range(30)))
    taken = [job.id for job in claims if job is not None]
    assert sorted(taken) == sorted(job.id for job in queued)  # each once, none twice
    assert await queue.depth() == 0


async def test_jobs_are_claimed_oldest_first_and_only_among_the_given_ids(
    store: Store, database: Database
) -> None:
    queue = JobQueue(database)
    document = await a_document(store)
    first, second, third = [
        await queue.enqueue(document_id=document.id, chatbot_id="demo", kind="url", payload={})
        for _ in range(3)
    ]
    assert await queue.claim("cli", only=[]) is None
    mine = await queue.claim("cli", only=[third.id])
    assert mine is not None and mine.id == third.id
    oldest = await queue.claim("server")
    assert oldest is not None and oldest.id == first.id
    assert (await queue.claim("server")).id == second.id  # type: ignore[union-attr]


async def test_finishing_keeps_the_record_and_drops_the_uploaded_bytes(
    store: Store, database: Database
) -> None:
    queue = JobQueue(database)
    document = await a_document(store)
    job = await queue.enqueue(
        document_id=document.id, chatbot_id="demo", kind="upload", payload={}, data=b"x" * 1000
    )
    await queue.claim("runner")
    await queue.finish(job.id, "failed", error="The document has no text to index.")
    ended = await queue.get(job.id)
    assert ended is not None and ended.status == "failed" and ended.data is None
    assert ended.error == "The document has no text to index." and ended.finished_at is not None
    assert await queue.open_jobs([document.id]) == []


async def test_a_cancelled_job_is_reported_lost_at_its_runners_next_heartbeat(
    store: Store, database: Database
) -> None:
    queue = JobQueue(database)
    kept, deleted = await a_document(store, "Kept"), await a_document(store, "Deleted")
    one = await queue.enqueue(document_id=kept.id, chatbot_id="demo", kind="url", payload={})
    two = await queue.enqueue(document_id=deleted.id, chatbot_id="demo", kind="url", payload={})
    await queue.claim("runner")
    await queue.claim("runner")
    assert await queue.cancel_document(deleted.id) == 1
    assert await queue.heartbeat([one.id, two.id]) == {two.id}
    assert (await queue.get(two.id)).status == "cancelled"  # type: ignore[union-attr]


async def test_a_released_job_goes_back_to_the_queue(store: Store, database: Database) -> None:
    queue = JobQueue(database)
    document = await a_document(store)
    job = await queue.enqueue(document_id=document.id, chatbot_id="demo", kind="url", payload={})
    await queue.claim("stopping-runner")
    await queue.release(job.id)
    again = await queue.claim("other-runner")
    assert again is not None and again.id == job.id and again.attempts == 2


async def test_a_dead_runners_job_is_queued_again_then_failed_after_max_attempts(
    store: Store, database: Database
) -> None:
    queue = JobQueue(database)
    document = await a_document(store)
    job = await queue.enqueue(document_id=document.id, chatbot_id="demo", kind="url", payload={})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claimed = await queue.claim(f"runner-{attempt}")
        assert claimed is not None and claimed.attempts == attempt
        # A runner that beat recently is alive: its job stays with it.
        assert await queue.requeue_stale(timedelta(minutes=5)) == ([], [])
        await asyncio.sleep(0.05)
        requeued, failed = await queue.requeue_stale(timedelta(milliseconds=10))
        if attempt < MAX_ATTEMPTS:
            assert [j.id for j in requeued] == [job.id] and failed == []
        else:
            assert requeued == [] and [j.id for j in failed] == [job.id]
    ended = await queue.get(job.id)
    assert (
        ended is not None and ended.status == "failed" and "runner stopped" in (ended.error or "")
    )
