"""Chatbots: their config, validated on the way in, and the origins allowed to embed them."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from sitechat.domain import (
    ANSWER_SCOPES,
    CHATBOT_ID_PATTERN,
    ChatbotConfig,
)
from sitechat.errors import Conflict, InvalidInput
from sitechat.storage import records
from sitechat.storage.base import Repository, check_fields, new_id, rowcount, utcnow
from sitechat.storage.models import (
    ChatbotRow,
    UsageCounterRow,
)
from sitechat.storage.translate import integrity_kind

# Chatbot ids appear in URLs and embed snippets.
_CHATBOT_ID = re.compile(CHATBOT_ID_PATTERN)
_CHATBOT_FIELDS = frozenset(f.name for f in dataclasses.fields(ChatbotConfig)) - {
    "id",
    "org_id",
    "created_at",
    "updated_at",
}


class ChatbotStore(Repository):
    # --- chatbots ------------------------------------------------------------------------

    async def create_chatbot(
        self, org_id: str, *, name: str, chatbot_id: str | None = None, **fields: Any
    ) -> ChatbotConfig:
        """A new chatbot; ``fields`` are any other ``ChatbotConfig`` fields.

        ``Conflict`` if ``chatbot_id`` is taken or ``org_id`` does not exist.
        """
        check_fields(fields, _CHATBOT_FIELDS - {"name"}, "chatbot")
        bot_id = chatbot_id if chatbot_id is not None else new_id()
        if not _CHATBOT_ID.fullmatch(bot_id):
            raise InvalidInput(
                "A chatbot id is 1 to 64 letters, digits, '-' or '_', starting with a letter "
                "or digit."
            )
        now = utcnow()
        config = ChatbotConfig(
            id=bot_id,
            org_id=org_id,
            name=name,
            created_at=now,
            updated_at=now,
            **_normalize_chatbot_fields(fields),
        )
        row = ChatbotRow(**_chatbot_columns(config))
        async with self._db.session(write=True) as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                if integrity_kind(exc) == "unique":
                    raise Conflict("A chatbot with that id already exists.") from exc
                raise
        return records.chatbot(row)

    async def get_chatbot(self, chatbot_id: str) -> ChatbotConfig | None:
        async with self._db.session() as session:
            row = await session.get(ChatbotRow, chatbot_id)
            return records.chatbot(row) if row is not None else None

    async def list_chatbots(self, org_id: str) -> list[ChatbotConfig]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ChatbotRow)
                .where(ChatbotRow.org_id == org_id)
                .order_by(ChatbotRow.created_at, ChatbotRow.id)
            )
            return [records.chatbot(row) for row in rows]

    async def chatbot_origins(self) -> list[tuple[list[str], bool]]:
        """Every chatbot's allowed origins and whether it allows any origin: what CORS
        preflights (which carry no chatbot id) are answered from."""
        async with self._db.session() as session:
            rows = await session.execute(select(ChatbotRow.allowed_origins, ChatbotRow.settings))
            return [
                (list(origins or ()), bool((settings or {}).get("any_origin", False)))
                for origins, settings in rows
            ]

    async def update_chatbot(self, chatbot_id: str, **fields: Any) -> ChatbotConfig | None:
        """Change the given fields; None if there is no such chatbot."""
        check_fields(fields, _CHATBOT_FIELDS, "chatbot")
        async with self._db.session(write=True) as session:
            row = await session.get(ChatbotRow, chatbot_id)
            if row is None:
                return None
            updated = dataclasses.replace(
                records.chatbot(row), updated_at=utcnow(), **_normalize_chatbot_fields(fields)
            )
            for column, value in _chatbot_columns(updated).items():
                setattr(row, column, value)
            await session.commit()
            return records.chatbot(row)

    async def delete_chatbot(self, chatbot_id: str) -> bool:
        """Delete a chatbot with its conversations, messages and documents.

        Its own usage counters go too (a new chatbot given the same id starts at zero);
        its org's counters keep what it used.
        """
        async with self._db.session(write=True) as session:
            result = await session.execute(
                delete(ChatbotRow)
                .where(ChatbotRow.id == chatbot_id)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                delete(UsageCounterRow)
                .where(UsageCounterRow.scope == "chatbot", UsageCounterRow.scope_id == chatbot_id)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return rowcount(result) > 0


def _normalize_chatbot_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Lists become the tuples ``ChatbotConfig`` holds; mappings are copied."""
    normalized = dict(fields)
    if "answer_scope" in normalized and normalized["answer_scope"] not in ANSWER_SCOPES:
        raise InvalidInput(f"answer_scope is one of: {', '.join(ANSWER_SCOPES)}.")
    for name in ("fallback_providers", "starter_questions", "allowed_origins"):
        if name in normalized:
            normalized[name] = tuple(normalized[name] or ())
    for name in ("theme", "settings"):
        if name in normalized:
            normalized[name] = dict(normalized[name] or {})
    return normalized


def _chatbot_columns(config: ChatbotConfig) -> dict[str, Any]:
    columns = dataclasses.asdict(config)
    columns["fallback_providers"] = list(config.fallback_providers)
    columns["starter_questions"] = list(config.starter_questions)
    columns["allowed_origins"] = list(config.allowed_origins)
    return columns
