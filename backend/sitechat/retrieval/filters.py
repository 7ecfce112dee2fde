"""The payload of a chunk point and the tenant filter over it, shared by both adapters.

Every search, count and delete of both adapters is scoped with ``edge_filter`` or
``server_filter``, which refuse a missing chatbot id, and every upsert is conditioned on
it: no code path reads, deletes or overwrites points without naming the chatbot. The
chatbot id must match exactly (a keyword match, no normalisation).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from qdrant_client import models
from qdrant_edge import FieldCondition, Filter, MatchValue

from sitechat.retrieval.base import Chunk

CHATBOT_KEY = "chatbot_id"
DOCUMENT_KEY = "document_id"


def require_id(value: object, name: str) -> str:
    """``value`` if it is a usable id, else ``ValueError``: a bug in the caller, not input."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def edge_filter(chatbot_id: str) -> Filter:
    """All points of one chatbot, for ``qdrant_edge``."""
    return Filter(must=[_edge_match(CHATBOT_KEY, chatbot_id)])


def edge_document_filter(chatbot_id: str, document_id: str) -> Filter:
    """The points of one document of one chatbot, for ``qdrant_edge``."""
    return Filter(
        must=[_edge_match(CHATBOT_KEY, chatbot_id), _edge_match(DOCUMENT_KEY, document_id)]
    )


def server_filter(chatbot_id: str) -> models.Filter:
    """All points of one chatbot, for ``qdrant_client``."""
    return models.Filter(must=[_server_match(CHATBOT_KEY, chatbot_id)])


def server_document_filter(chatbot_id: str, document_id: str) -> models.Filter:
    """The points of one document of one chatbot, for ``qdrant_client``."""
    return models.Filter(
        must=[_server_match(CHATBOT_KEY, chatbot_id), _server_match(DOCUMENT_KEY, document_id)]
    )


# Both ids are required (never optional arguments), so a missing document id can not
# quietly widen a document delete into a chatbot delete.


def _edge_match(key: str, value: str) -> FieldCondition:
    return FieldCondition(key, match=MatchValue(require_id(value, key)))


def _server_match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=require_id(value, key)))


# --- payload -----------------------------------------------------------------------------


def point_id(chunk: Chunk) -> str:
    """The chunk's id as a point id. Qdrant stores UUIDs, and hands them back in canonical
    form: only canonical ids round-trip unchanged, so anything else is refused."""
    try:
        canonical = str(uuid.UUID(chunk.id))
    except (ValueError, TypeError, AttributeError):
        canonical = ""
    if canonical != chunk.id:
        raise ValueError(f"Chunk.id must be a lowercase hyphenated UUID, got {chunk.id!r}")
    return canonical


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    return {
        CHATBOT_KEY: require_id(chunk.chatbot_id, "Chunk.chatbot_id"),
        DOCUMENT_KEY: require_id(chunk.document_id, "Chunk.document_id"),
        "position": chunk.position,
        "text": chunk.text,
        "title": chunk.title,
        "url": chunk.url,
        "heading_path": list(chunk.heading_path),
        "token_count": chunk.token_count,
        "metadata": dict(chunk.metadata),
    }


def chunk_from_payload(point: object, payload: Mapping[str, Any] | None) -> Chunk:
    data = payload or {}
    return Chunk(
        id=str(point),
        chatbot_id=str(data.get(CHATBOT_KEY, "")),
        document_id=str(data.get(DOCUMENT_KEY, "")),
        position=int(data.get("position", 0)),
        text=str(data.get("text", "")),
        title=str(data.get("title", "")),
        url=data.get("url"),
        heading_path=tuple(str(h) for h in data.get("heading_path") or ()),
        token_count=int(data.get("token_count", 0)),
        metadata=dict(data.get("metadata") or {}),
    )


def group_by_chatbot(chunks: Sequence[Chunk]) -> dict[str, list[tuple[str, Chunk]]]:
    """(point id, chunk) pairs grouped by chatbot, every chunk validated before any write:
    a bad chunk is the caller's bug, reported as ``ValueError``."""
    by_chatbot: dict[str, list[tuple[str, Chunk]]] = {}
    for chunk in chunks:
        by_chatbot.setdefault(require_id(chunk.chatbot_id, "Chunk.chatbot_id"), []).append(
            (point_id(chunk), chunk)
        )
        require_id(chunk.document_id, "Chunk.document_id")
    return by_chatbot
