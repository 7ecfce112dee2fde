"""Fixtures for the vector store contract: the same store API on both adapters."""

from __future__ import annotations

import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient

from sitechat.retrieval.base import Chunk, VectorStore
from sitechat.retrieval.chunking import chunk_document
from sitechat.retrieval.edge_store import EdgeVectorStore
from sitechat.retrieval.loaders import load_text
from sitechat.retrieval.server_store import QdrantServerStore

DOCS = Path(__file__).parent / "docs"
_IDS = uuid.UUID("5f0c1d9e-8c2a-4d7e-9a51-3b1f2e4c6a70")


def chunk_id(chatbot_id: str, document_id: str, position: int) -> str:
    return str(uuid.uuid5(_IDS, f"{chatbot_id}/{document_id}/{position}"))


def make_chunk(
    chatbot_id: str,
    document_id: str,
    position: int,
    text: str,
    *,
    id: str | None = None,
    title: str | None = None,
    url: str | None = None,
    heading_path: tuple[str, ...] = (),
    token_count: int = 0,
    metadata: dict[str, Any] | None = None,
) -> Chunk:
    return Chunk(
        id=id or chunk_id(chatbot_id, document_id, position),
        chatbot_id=chatbot_id,
        document_id=document_id,
        position=position,
        text=text,
        title=title if title is not None else document_id,
        url=url,
        heading_path=heading_path,
        token_count=token_count,
        metadata=metadata or {},
    )


def doc_chunks(chatbot_id: str, filename: str) -> list[Chunk]:
    """The chunks of one file of ``docs/``, as the indexer would build them."""
    doc = load_text((DOCS / filename).read_bytes(), filename=filename)
    document_id = Path(filename).stem
    return [
        make_chunk(
            chatbot_id,
            document_id,
            draft.position,
            draft.text,
            title=doc.title,
            heading_path=draft.heading_path,
            token_count=draft.token_count,
        )
        for draft in chunk_document(doc.text, title=doc.title, fmt=doc.fmt)
    ]


def corpus(chatbot_id: str) -> list[Chunk]:
    return [
        chunk
        for name in ("getting-started.md", "pricing.md", "troubleshooting.md")
        for chunk in doc_chunks(chatbot_id, name)
    ]


def new_server_store() -> QdrantServerStore:
    return QdrantServerStore(AsyncQdrantClient(":memory:"), "test")


@pytest.fixture
def shard_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for a contract-test shard, in RAM when the machine has /dev/shm.

    Opening a shard on this machine's disk costs ~0.5 s of fsyncs; the contract is about
    behaviour, not the disk (``test_edge_store.py`` keeps persistence tests on disk).
    """
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path / "qdrant"
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="sitechat-test-") as directory:
        yield Path(directory) / "qdrant"


@pytest.fixture(params=["edge", "server"])
async def store(request: pytest.FixtureRequest, shard_dir: Path) -> AsyncIterator[VectorStore]:
    """A started store, empty: a Qdrant Edge shard, or the Qdrant client's local mode."""
    if request.param == "edge":
        vector_store: VectorStore = EdgeVectorStore(shard_dir)
    else:
        vector_store = new_server_store()
    with warnings.catch_warnings():
        # Local mode says payload indexes have no effect there; a real server uses them.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await vector_store.start()
    yield vector_store
    await vector_store.close()
