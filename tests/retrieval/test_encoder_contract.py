"""One contract for every ``DenseEncoder``: the same cases against each implementation.

- ``minilm``: the real ``MiniLMEmbedder`` (all-MiniLM-L6-v2 on the CPU; marker
  ``dense_model``). A fresh encoder per test: torch and the weights load once per process,
  a second load of the model takes a fraction of a second.
- ``openai``: the real ``OpenAIEmbedder`` and the real SDK against the scripted
  OpenAI-compatible server's ``/v1/embeddings`` (hashed-word vectors: texts that share
  words are close, which is all these cases ask of a meaning).

The interface promises vectors of ``dimensions`` floats compared by cosine; it does not
promise unit length (the stores normalise: ``Distance.Cosine`` and ``hybrid.normalized``),
so that is not checked here. Endpoint failures, batching into requests and the query cache
are the OpenAI encoder's own (``test_dense.py``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence

import pytest

from sitechat.retrieval.dense import DenseEncoder, MiniLMEmbedder, OpenAIEmbedder
from tests.support.scripted_openai import ScriptedOpenAI

KINDS = [pytest.param("minilm", marks=pytest.mark.dense_model), "openai"]

TEXTS = [
    "Refunds are paid within fourteen days of the return.",
    "The Berlin store opens at 9 am from Monday to Saturday.",
    "Shipping is free for orders over 50 euros.",
    "Bake the bread for forty minutes.",
]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_same(a: Sequence[float], b: Sequence[float]) -> None:
    # A batch may be computed with other padding than a single text: equal up to rounding.
    assert a == pytest.approx(b, abs=1e-5)


def build(kind: str, request: pytest.FixtureRequest) -> DenseEncoder:
    if kind == "minilm":
        return MiniLMEmbedder()
    server: ScriptedOpenAI = request.getfixturevalue("scripted_openai")
    return OpenAIEmbedder(
        api_key="sk-test", base_url=server.base_url, model="text-embedding-3-small"
    )


@pytest.fixture(params=KINDS)
async def encoder(request: pytest.FixtureRequest) -> AsyncIterator[DenseEncoder]:
    built = build(request.param, request)
    yield built
    await built.aclose()


async def test_satisfies_the_protocol_and_names_its_model(encoder: DenseEncoder) -> None:
    assert isinstance(encoder, DenseEncoder)
    assert isinstance(encoder.model_id, str) and encoder.model_id
    assert isinstance(encoder.dimensions, int) and encoder.dimensions > 0


async def test_every_vector_has_the_declared_dimensions(encoder: DenseEncoder) -> None:
    documents = await encoder.embed_documents(TEXTS)
    query = await encoder.embed_query("When does the store open?")

    assert len(documents) == len(TEXTS)
    for vector in [*documents, query]:
        assert len(vector) == encoder.dimensions
        assert all(isinstance(x, float) and math.isfinite(x) for x in vector)
        assert any(x != 0.0 for x in vector)


async def test_a_batch_comes_back_in_input_order(encoder: DenseEncoder) -> None:
    batch = await encoder.embed_documents(TEXTS)
    reversed_batch = await encoder.embed_documents(TEXTS[::-1])

    for text, vector in zip(TEXTS, batch, strict=True):
        [alone] = await encoder.embed_documents([text])
        assert_same(vector, alone)
    for vector, again in zip(batch, reversed_batch[::-1], strict=True):
        assert_same(vector, again)


async def test_the_same_text_gets_the_same_vector_as_document_and_as_query(
    encoder: DenseEncoder,
) -> None:
    text = TEXTS[0]
    [document] = await encoder.embed_documents([text])
    [again] = await encoder.embed_documents([text])
    query = await encoder.embed_query(text)

    assert_same(document, again)
    assert_same(document, query)
    assert_same(await encoder.embed_query(text), query)


async def test_different_texts_get_different_vectors_closer_for_shared_meaning(
    encoder: DenseEncoder,
) -> None:
    refunds, opening, shipping, bread = await encoder.embed_documents(TEXTS)
    query = await encoder.embed_query("When are refunds paid?")

    assert cosine(refunds, opening) < 0.99
    assert cosine(query, refunds) > max(cosine(query, v) for v in (opening, shipping, bread))


async def test_an_empty_batch_gives_no_vectors(encoder: DenseEncoder) -> None:
    assert await encoder.embed_documents([]) == []


async def test_concurrent_calls_each_get_their_own_vectors(encoder: DenseEncoder) -> None:
    expected = await encoder.embed_documents(TEXTS)

    results = await asyncio.gather(*(encoder.embed_documents([t]) for t in TEXTS))

    for [vector], want in zip(results, expected, strict=True):
        assert_same(vector, want)


@pytest.mark.parametrize("kind", KINDS)
async def test_aclose_is_idempotent(kind: str, request: pytest.FixtureRequest) -> None:
    encoder = build(kind, request)
    await encoder.embed_query("warm up")

    await encoder.aclose()
    await encoder.aclose()
