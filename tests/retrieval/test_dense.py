"""Dense encoders: OpenAI's embeddings endpoint through the real SDK (served on loopback by a
small compatible server), and the local MiniLM model."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sitechat.errors import VectorStoreError
from sitechat.retrieval.dense import (
    EMBED_BATCH,
    MiniLMEmbedder,
    OpenAIEmbedder,
    build_encoder,
)
from sitechat.retrieval.edge_store import EdgeVectorStore

from .conftest import MemoEncoder, make_chunk

SIZE = 16


def bag_of_words(text: str, size: int = SIZE) -> list[float]:
    """A deterministic stand-in for a model's vector: hashed word counts, unit length."""
    vector = [0.0] * size
    for word in text.lower().split():
        vector[int(hashlib.sha256(word.strip("?.,!").encode()).hexdigest(), 16) % size] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class EmbeddingsServer:
    """``POST /v1/embeddings`` as OpenAI answers it (data out of order, to check sorting)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = False
        self.size = SIZE
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if server.fail:
                    payload = {"error": {"message": "boom", "type": "server_error"}}
                    self._send(500, payload)
                    return
                inputs = body["input"]
                data = [
                    {"object": "embedding", "index": i, "embedding": bag_of_words(t, server.size)}
                    for i, t in enumerate(inputs)
                ]
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": list(reversed(data)),
                        "model": body["model"],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def __enter__(self) -> EmbeddingsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with EmbeddingsServer() as running:
        yield running


def openai_encoder(server: EmbeddingsServer, **kwargs: Any) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        api_key="test-key",
        base_url=server.base_url,
        model="text-embedding-3-small",
        dimensions=SIZE,
        **kwargs,
    )


async def test_openai_embeddings_come_back_in_input_order_in_batches(
    server: EmbeddingsServer,
) -> None:
    encoder = openai_encoder(server)
    texts = [f"passage number {i}" for i in range(EMBED_BATCH + 5)]
    vectors = await encoder.embed_documents(texts)
    assert vectors == [bag_of_words(t) for t in texts]
    assert [len(r["input"]) for r in server.requests] == [EMBED_BATCH, 5]
    assert server.requests[0]["dimensions"] == SIZE
    assert encoder.model_id == f"text-embedding-3-small@{SIZE}"
    await encoder.aclose()


async def test_query_vectors_are_cached(server: EmbeddingsServer) -> None:
    encoder = openai_encoder(server)
    first = await encoder.embed_query("refund policy")
    assert await encoder.embed_query("refund policy") == first
    assert len(server.requests) == 1
    await encoder.aclose()


async def test_endpoint_failures_and_wrong_sizes_are_vector_store_errors(
    server: EmbeddingsServer,
) -> None:
    encoder = openai_encoder(server)
    server.fail = True
    with pytest.raises(VectorStoreError) as caught:
        await encoder.embed_query("anything")
    assert "boom" not in caught.value.message
    server.fail = False
    server.size = SIZE * 2
    with pytest.raises(VectorStoreError):
        await encoder.embed_documents(["a passage"])
    await encoder.aclose()


async def test_a_store_searches_hybrid_with_openai_embeddings(
    server: EmbeddingsServer, tmp_path: Path
) -> None:
    encoder = openai_encoder(server)
    store = EdgeVectorStore(tmp_path / "qdrant", dense=encoder)
    await store.start()
    await store.upsert(
        [make_chunk("bot", "a", 0, "refunds within fourteen days"), make_chunk("bot", "b", 0, "x")]
    )
    hits = await store.search("bot", "refunds", 2)
    assert hits[0].chunk.document_id == "a" and hits[0].score_kind == "rrf"
    # The stored text is "a" (its title) and four words; the query shares one of them.
    assert hits[0].similarity == pytest.approx(1 / math.sqrt(5), rel=1e-4)
    await store.close()
    await encoder.aclose()


def test_the_encoder_is_chosen_by_configuration() -> None:
    assert build_encoder("none") is None and build_encoder("") is None
    assert isinstance(build_encoder("local"), MiniLMEmbedder)
    assert isinstance(build_encoder("openai", openai_api_key="k"), OpenAIEmbedder)
    with pytest.raises(ValueError):
        build_encoder("openai")
    with pytest.raises(ValueError):
        build_encoder("word2vec")
    with pytest.raises(ValueError):
        OpenAIEmbedder(api_key="k", base_url=None, model="my-own-model")


@pytest.mark.dense_model
async def test_minilm_vectors_are_unit_length_and_closer_for_the_same_meaning(
    minilm: MemoEncoder,
) -> None:
    refund, money, bread = await minilm.inner.embed_documents(
        ["Refunds are paid within fourteen days.", "How do I get my money back?", "Bake bread."]
    )
    assert len(refund) == minilm.dimensions == 384
    assert math.isclose(sum(x * x for x in refund), 1.0, rel_tol=1e-4)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(refund, money) > cos(refund, bread) + 0.2
