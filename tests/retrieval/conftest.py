"""Fixtures for the vector store contract: the same store API on both adapters, with BM25
alone (``store``) and hybrid with the local MiniLM model (``hybrid_store``)."""

from __future__ import annotations

import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient

from sitechat.ingestion.chunking import chunk_document
from sitechat.ingestion.loaders import load_text
from sitechat.retrieval.base import Chunk, VectorStore
from sitechat.retrieval.dense import DenseEncoder, MiniLMEmbedder
from sitechat.retrieval.edge_store import EdgeVectorStore
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


def new_store(kind: str, shard_dir: Path, dense: DenseEncoder | None = None) -> VectorStore:
    """A Qdrant Edge shard in ``shard_dir`` for an ``edge...`` kind, else the Qdrant client's
    local mode."""
    if kind.startswith("edge"):
        return EdgeVectorStore(shard_dir, dense=dense)
    return QdrantServerStore(AsyncQdrantClient(":memory:"), "test", dense=dense)


@asynccontextmanager
async def started(vector_store: VectorStore) -> AsyncIterator[VectorStore]:
    """``vector_store`` started, and closed again at the end of the block."""
    with warnings.catch_warnings():
        # Local mode says payload indexes have no effect there; a real server uses them.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await vector_store.start()
    try:
        yield vector_store
    finally:
        await vector_store.close()


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
    async with started(new_store(request.param, shard_dir)) as vector_store:
        yield vector_store


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dense_model: loads the local all-MiniLM-L6-v2 model (once per session)"
    )


class MemoEncoder:
    """The real model, remembering the vectors of texts it has embedded in this session, so
    the same corpus is encoded once however many tests index it."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self._documents: dict[str, list[float]] = {}

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._documents))
        if missing:
            for text, vector in zip(
                missing, await self.inner.embed_documents(missing), strict=True
            ):
                self._documents[text] = vector
        return [self._documents[t] for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return await self.inner.embed_query(text)

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="session")
def minilm() -> MemoEncoder:
    """The real local dense model, loaded once for the whole session (about 10 s).

    It is part of the ``dense`` extra that ``make test`` installs: a missing model is an
    error, not a skip.
    """
    encoder = MiniLMEmbedder()
    encoder.load_blocking()
    return MemoEncoder(encoder)


@pytest.fixture(params=["edge", "server"])
async def hybrid_store(
    request: pytest.FixtureRequest, shard_dir: Path, minilm: MemoEncoder
) -> AsyncIterator[VectorStore]:
    """A started, empty store with BM25 and dense vectors: hybrid search."""
    path = shard_dir.parent / "hybrid"
    async with started(new_store(request.param, path, dense=minilm)) as vector_store:
        yield vector_store


@pytest.fixture(
    params=[
        "edge",
        "server",
        pytest.param("edge-hybrid", marks=pytest.mark.dense_model),
        pytest.param("server-hybrid", marks=pytest.mark.dense_model),
    ]
)
async def any_store(request: pytest.FixtureRequest, shard_dir: Path) -> AsyncIterator[VectorStore]:
    """Every adapter in every search mode: for the tenant-isolation attacks."""
    kind: str = request.param
    dense = request.getfixturevalue("minilm") if kind.endswith("hybrid") else None
    async with started(new_store(kind, shard_dir, dense=dense)) as vector_store:
        yield vector_store
