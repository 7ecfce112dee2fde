"""The tenant filter and the chunk payload shared by both adapters."""

from __future__ import annotations

import pytest
from qdrant_client import models
from qdrant_edge import FieldCondition, MatchValue

from sitechat.retrieval.filters import (
    chunk_from_payload,
    chunk_payload,
    edge_document_filter,
    edge_filter,
    point_id,
    require_id,
    server_document_filter,
    server_filter,
)

from .conftest import make_chunk

MISSING = [None, "", " ", "\t\n", 42, b"bot"]


@pytest.mark.parametrize("bad", MISSING)
def test_every_filter_refuses_a_missing_chatbot_id(bad: object) -> None:
    for build in (edge_filter, server_filter):
        with pytest.raises(ValueError):
            build(bad)  # type: ignore[arg-type]
    for build_doc in (edge_document_filter, server_document_filter):
        with pytest.raises(ValueError):
            build_doc(bad, "doc")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", MISSING)
def test_a_document_filter_refuses_a_missing_document_id(bad: object) -> None:
    # Without this a document delete would silently become a whole-chatbot delete.
    for build_doc in (edge_document_filter, server_document_filter):
        with pytest.raises(ValueError):
            build_doc("bot", bad)  # type: ignore[arg-type]


def test_ids_are_matched_exactly_as_given() -> None:
    assert require_id(" bot ", "chatbot_id") == " bot "
    server = server_filter("Bot-1 ")
    assert server.must == [
        models.FieldCondition(key="chatbot_id", match=models.MatchValue(value="Bot-1 "))
    ]
    edge = edge_filter("Bot-1 ")
    [condition] = edge.must or []
    assert isinstance(condition, FieldCondition)
    assert condition.key == "chatbot_id"
    assert isinstance(condition.match, MatchValue)
    assert condition.match.value == "Bot-1 "


def test_document_filters_scope_by_chatbot_and_document() -> None:
    server = server_document_filter("bot", "doc")
    assert [c.key for c in server.must or []] == ["chatbot_id", "document_id"]  # type: ignore[union-attr]
    edge = edge_document_filter("bot", "doc")
    assert [c.key for c in edge.must or []] == ["chatbot_id", "document_id"]  # type: ignore[union-attr]


def test_payload_round_trips_every_field() -> None:
    chunk = make_chunk(
        "bot",
        "doc",
        4,
        "text",
        title="T",
        url="https://x.example/a",
        heading_path=("A", "B"),
        token_count=9,
        metadata={"k": [1, "2"]},
    )
    payload = chunk_payload(chunk)
    assert payload["heading_path"] == ["A", "B"]  # JSON has no tuples
    assert chunk_from_payload(chunk.id, payload) == chunk


def test_only_canonical_uuid_ids_are_accepted() -> None:
    good = make_chunk("bot", "doc", 0, "text")
    assert point_id(good) == good.id
    for bad in ("x", good.id.upper(), good.id.replace("-", ""), "{" + good.id + "}"):
        with pytest.raises(ValueError):
            point_id(make_chunk("bot", "doc", 0, "text", id=bad))
