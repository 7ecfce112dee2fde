"""What only the Qdrant Edge adapter has: a shard on disk, owned by one process."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from qdrant_edge import EdgeConfig, EdgeShard, EdgeSparseVectorParams, KeywordIndexParams

from sitechat.errors import VectorStoreError
from sitechat.retrieval.edge_store import EdgeVectorStore
from sitechat.retrieval.hybrid import LAYOUT_MISMATCH

from .conftest import corpus, make_chunk, started


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    first = EdgeVectorStore(path)
    await first.start()
    chunks = corpus("bot")
    await first.upsert(chunks)
    await first.delete_document("bot", "pricing")
    before = await first.search("bot", "widget snippet", 5)
    await first.close()

    async with started(EdgeVectorStore(path)) as second:
        assert await second.count("bot") == sum(1 for c in chunks if c.document_id != "pricing")
        after = await second.search("bot", "widget snippet", 5)
        assert [(h.chunk, round(h.score, 4)) for h in after] == [
            (h.chunk, round(h.score, 4)) for h in before
        ]


async def test_start_creates_the_tenant_and_document_indexes(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    store = EdgeVectorStore(path)
    await store.start()
    await store.close()
    shard = EdgeShard.load(str(path))
    try:
        schema = shard.info().payload_schema
        assert set(schema) == {"chatbot_id", "document_id"}
        params = schema["chatbot_id"].params
        assert isinstance(params, KeywordIndexParams)
        assert params.is_tenant is True
    finally:
        shard.close()


async def test_a_second_store_on_the_same_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    async with started(EdgeVectorStore(path)) as owner:
        intruder = EdgeVectorStore(path)
        with pytest.raises(VectorStoreError) as caught:
            await intruder.start()
        assert caught.value.__cause__ is not None
        assert await intruder.ping() is False
        await owner.upsert([make_chunk("bot", "doc", 0, "still works")])
        assert await owner.count("bot") == 1


async def test_a_shard_with_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    EdgeShard.create(
        str(path), EdgeConfig(sparse_vectors={"other": EdgeSparseVectorParams()})
    ).close()
    store = EdgeVectorStore(path)
    with pytest.raises(VectorStoreError) as caught:
        await store.start()
    # The message names no path or setting; the operator's details are in the cause.
    assert str(caught.value) == LAYOUT_MISMATCH
    assert str(path) in str(caught.value.__cause__)


async def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("hello")
    with pytest.raises(VectorStoreError):
        await EdgeVectorStore(path).start()


async def test_calls_before_start_and_after_close_fail_cleanly(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path / "qdrant")
    assert await store.ping() is False
    with pytest.raises(VectorStoreError):
        await store.search("bot", "widget", 3)
    with pytest.raises(VectorStoreError):
        await store.upsert([make_chunk("bot", "doc", 0, "text")])
    await store.start()
    await store.close()
    await store.close()  # closing twice is harmless
    assert await store.ping() is False
    with pytest.raises(VectorStoreError):
        await store.count("bot")


async def test_a_closed_store_can_be_started_again(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path / "qdrant")
    await store.start()
    await store.upsert([make_chunk("bot", "doc", 0, "reopened text")])
    await store.close()
    await store.start()
    try:
        assert await store.count("bot") == 1
    finally:
        await store.close()


async def test_concurrent_writes_and_reads_all_land(tmp_path: Path) -> None:
    async with started(EdgeVectorStore(tmp_path / "qdrant")) as store:

        async def write(n: int) -> None:
            chunks = [make_chunk("bot", f"doc-{n}", i, f"fact {n} {i} widget") for i in range(20)]
            await store.upsert(chunks)

        async def read() -> None:
            for _ in range(5):
                for hit in await store.search("bot", "widget fact", 10):
                    assert hit.chunk.chatbot_id == "bot"

        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(write, n)
                tg.start_soon(read)
        assert await store.count("bot") == 200


async def test_a_cancelled_upsert_leaves_the_store_usable(tmp_path: Path) -> None:
    async with started(EdgeVectorStore(tmp_path / "qdrant")) as store:
        chunks = [make_chunk("bot", "doc", i, f"widget fact {i}") for i in range(2000)]
        with anyio.move_on_after(0.001):
            await store.upsert(chunks)
        # The write is all or nothing, and the write lock was released.
        assert await store.count("bot") in (0, 2000)
        await store.upsert([make_chunk("bot", "other", 0, "after the cancel")])
        assert await store.search("bot", "cancel", 1)
