"""Counters: tokens used per org and chatbot per month (for budgets), and the public gate's
rejections per chatbot and day (for analytics).

Both are additive upserts (``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``), so
concurrent writers from several processes never lose an increment. SQLite and PostgreSQL
share that syntax; SQLAlchemy has one ``insert`` construct per dialect for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from sitechat.domain import RejectionCount, TokenUsage
from sitechat.errors import InvalidInput, NotFound
from sitechat.storage.database import Database
from sitechat.storage.group_commit import Sums, WriteBatch
from sitechat.storage.models import ChatbotRow, GateRejectionRow, OrgRow, UsageCounterRow

Scope = str  # "org" | "chatbot"
_SCOPES = frozenset({"org", "chatbot"})


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def add_usage(
    batch: WriteBatch,
    *,
    org_id: str,
    chatbot_id: str,
    period: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Add tokens to the org's and the chatbot's month, inside a group commit's transaction
    (``Database.group``): the batch's answers are summed and each month written once."""
    if prompt_tokens <= 0 and completion_tokens <= 0:
        return
    tokens = (max(prompt_tokens, 0), max(completion_tokens, 0))
    batch.add(_write_usage, ("org", org_id, period), tokens)
    batch.add(_write_usage, ("chatbot", chatbot_id, period), tokens)


def _write_usage(connection: Connection, sums: Sums) -> None:
    rows = []
    for key, (prompt, completion) in sums.items():
        scope, scope_id, period = cast(tuple[str, str, str], key)
        rows.append(
            {
                "scope": scope,
                "scope_id": scope_id,
                "period": period,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
            }
        )
    connection.execute(
        _additive_upsert(connection.dialect.name, UsageCounterRow, _USAGE_KEYS, _USAGE_SUMS), rows
    )


_USAGE_KEYS = ("scope", "scope_id", "period")
_USAGE_SUMS = ("prompt_tokens", "completion_tokens")


async def _add(
    session: AsyncSession,
    model: type[UsageCounterRow] | type[GateRejectionRow],
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: tuple[str, ...],
    sums: tuple[str, ...],
) -> None:
    dialect = session.get_bind().dialect.name
    await session.execute(_additive_upsert(dialect, model, keys, sums), list(rows))


@cache
def _additive_upsert(
    dialect: str,
    model: type[UsageCounterRow] | type[GateRejectionRow],
    keys: tuple[str, ...],
    sums: tuple[str, ...],
) -> Executable:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET n = n + excluded.n`` for each of
    ``sums``, on the model's table (Core), executed with a list of rows: once per row, so
    two rows of one key in a list add up instead of failing the statement."""
    table = cast(Table, model.__table__)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )


class UsageLedger:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def month_usage(self, scope: Scope, scope_id: str, period: str) -> TokenUsage:
        if scope not in _SCOPES:
            raise InvalidInput("scope is 'org' or 'chatbot'.")
        async with self._db.session() as session:
            row = await session.get(UsageCounterRow, (scope, scope_id, period))
            if row is None:
                return TokenUsage()
            return TokenUsage(int(row.prompt_tokens), int(row.completion_tokens))

    async def get_org_budget(self, org_id: str) -> int | None:
        async with self._db.session() as session:
            budget = await session.scalar(
                select(OrgRow.monthly_token_budget).where(OrgRow.id == org_id)
            )
            return int(budget) if budget is not None else None

    async def set_org_budget(self, org_id: str, tokens: int | None) -> None:
        """``NotFound`` if there is no such org; None removes the budget."""
        if tokens is not None and not 0 <= tokens < 2**63:  # the column is a BIGINT
            raise InvalidInput("A budget is a number of tokens, 0 to 2**63 - 1.")
        async with self._db.session(write=True) as session:
            row = await session.get(OrgRow, org_id)
            if row is None:
                raise NotFound("No org with that id.")
            row.monthly_token_budget = tokens
            await session.commit()

    async def add_rejections(self, counts: Mapping[tuple[str, str, str], int]) -> None:
        """Add ``{(chatbot_id, day, reason): n}``; counts for deleted chatbots are dropped."""
        if not counts:
            return
        async with self._db.session(write=True) as session:
            wanted = {key[0] for key in counts}
            existing = set(
                await session.scalars(select(ChatbotRow.id).where(ChatbotRow.id.in_(wanted)))
            )
            rows = [
                {"chatbot_id": chatbot_id, "day": day, "reason": reason, "count": n}
                for (chatbot_id, day, reason), n in counts.items()
                if chatbot_id in existing and n > 0
            ]
            if rows:
                await _add(
                    session,
                    GateRejectionRow,
                    rows,
                    keys=("chatbot_id", "day", "reason"),
                    sums=("count",),
                )
            await session.commit()

    async def rejections(
        self, chatbot_id: str, first_day: str, last_day: str
    ) -> list[RejectionCount]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(GateRejectionRow)
                .where(
                    GateRejectionRow.chatbot_id == chatbot_id,
                    GateRejectionRow.day >= first_day,
                    GateRejectionRow.day <= last_day,
                )
                .order_by(GateRejectionRow.day, GateRejectionRow.reason)
            )
            return [RejectionCount(row.day, row.reason, int(row.count)) for row in rows]
