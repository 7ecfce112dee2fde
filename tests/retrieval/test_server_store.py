"""What only the Qdrant server adapter has: collection setup and a network in between.

The collection tests use the client's local mode; the failure tests talk to real sockets on
127.0.0.1 (a closed port, and a tiny server that answers every request with a 500).
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from qdrant_client import AsyncQdrantClient, models

from sitechat.errors import VectorStoreError
from sitechat.retrieval.server_store import QdrantServerStore

from .conftest import make_chunk

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


async def test_start_creates_the_collection_with_idf_sparse_vectors() -> None:
    client = AsyncQdrantClient(":memory:")
    store = QdrantServerStore(client, "chunks")
    await store.start()
    info = await client.get_collection("chunks")
    sparse = info.config.params.sparse_vectors or {}
    assert set(sparse) == {"bm25"}
    assert sparse["bm25"].modifier == models.Modifier.IDF
    await store.close()


async def test_start_is_idempotent_and_keeps_data() -> None:
    client = AsyncQdrantClient(":memory:")
    store = QdrantServerStore(client, "chunks")
    await store.start()
    await store.upsert([make_chunk("bot", "doc", 0, "kept across starts")])
    await store.start()
    await QdrantServerStore(client, "chunks").start()  # another worker starting up
    assert await store.count("bot") == 1
    await store.close()


async def test_concurrent_starts_agree_on_one_collection() -> None:
    client = AsyncQdrantClient(":memory:")
    stores = [QdrantServerStore(client, "chunks") for _ in range(4)]
    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(store.start)
    assert await stores[0].ping() is True
    await client.close()


async def test_a_collection_with_another_layout_is_refused() -> None:
    client = AsyncQdrantClient(":memory:")
    await client.create_collection(
        "chunks", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    with pytest.raises(VectorStoreError) as caught:
        await QdrantServerStore(client, "chunks").start()
    assert str(caught.value) == VectorStoreError.message
    assert "IDF" in str(caught.value.__cause__)
    await client.close()


async def test_ping_is_false_until_the_collection_exists() -> None:
    client = AsyncQdrantClient(":memory:")
    store = QdrantServerStore(client, "chunks")
    assert await store.ping() is False
    await store.start()
    assert await store.ping() is True
    await store.close()


def test_an_empty_collection_name_is_refused() -> None:
    with pytest.raises(ValueError):
        QdrantServerStore(AsyncQdrantClient(":memory:"), "")


# --- failures on the wire ------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_server_fails_as_vector_store_errors() -> None:
    store = QdrantServerStore.from_url(
        f"http://127.0.0.1:{_closed_port()}", None, "chunks", timeout=2
    )
    assert await store.ping() is False
    with pytest.raises(VectorStoreError):
        await store.start()
    with pytest.raises(VectorStoreError):
        await store.search("bot", "widget", 3)
    with pytest.raises(VectorStoreError):
        await store.upsert([make_chunk("bot", "doc", 0, "text")])
    await store.close()


Reply = tuple[int, bytes]


@asynccontextmanager
async def http_server(reply: Callable[[bytes], Reply]) -> AsyncIterator[str]:
    """A bare HTTP/1.1 server on 127.0.0.1; ``reply`` maps a request line to status, body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                status, body = reply(head.split(b"\r\n", 1)[0])
                writer.write(
                    b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (status, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def failing_server() -> AsyncIterator[str]:
    """Answers every request with a 500 whose body holds text that must not leak."""
    body = b'{"status": {"error": "internal secret detail"}, "time": 0}'
    async with http_server(lambda _: (500, body)) as url:
        yield url


async def test_a_server_too_old_for_per_tenant_idf_is_refused_at_start() -> None:
    old = b'{"title": "qdrant - vector search engine", "version": "1.12.4"}'
    async with http_server(lambda _: (200, old)) as url:
        store = QdrantServerStore.from_url(url, None, "chunks", timeout=2)
        with pytest.raises(VectorStoreError) as caught:
            await store.start()
        assert "1.12.4 is too old" in str(caught.value.__cause__)
        await store.close()


async def test_server_errors_become_vector_store_errors_without_their_text(
    failing_server: str,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the client warns about an API key over plain http
        store = QdrantServerStore.from_url(failing_server, "key", "chunks", timeout=2)
        calls: list[Callable[[], Awaitable[object]]] = [
            store.start,
            lambda: store.upsert([make_chunk("bot", "doc", 0, "text")]),
            lambda: store.search("bot", "widget", 3),
            lambda: store.count("bot"),
            lambda: store.delete_document("bot", "doc"),
            lambda: store.delete_chatbot("bot"),
        ]
        for call in calls:
            with pytest.raises(VectorStoreError) as caught:
                await call()
            assert "secret" not in str(caught.value)
            assert caught.value.__cause__ is not None
        assert await store.ping() is False
    await store.close()
