"""Plain domain records for unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sitechat.domain import Message, MessageRole


def message(role: MessageRole, content: str) -> Message:
    """A stored, complete message (its id is its content, for readable failures)."""
    return Message(
        id=content,
        conversation_id="c",
        role=role,
        content=content,
        status="complete",
        created_at=datetime.now(UTC),
    )
