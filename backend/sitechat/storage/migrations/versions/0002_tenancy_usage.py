"""Tenancy and usage: org budgets, token columns on messages, usage counters, feedback and
the gate's rejection counts.

Existing assistant messages are backfilled: their token counts and context-quality level
are copied out of the JSON columns, and the monthly usage counters are summed from them, so
budgets and analytics agree with what was stored before the upgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orgs") as batch:
        batch.add_column(sa.Column("monthly_token_budget", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("prompt_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("completion_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quality_level", sa.String(length=16), nullable=True))

    op.create_table(
        "feedback",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_feedback_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_feedback_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_conversation_id"), "feedback", ["conversation_id"])

    op.create_table(
        "usage_counters",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", "period", name=op.f("pk_usage_counters")),
    )

    op.create_table(
        "gate_rejections",
        sa.Column("chatbot_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chatbot_id"],
            ["chatbots.id"],
            name=op.f("fk_gate_rejections_chatbot_id_chatbots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chatbot_id", "day", "reason", name=op.f("pk_gate_rejections")),
    )

    _backfill()


def _tokens(usage: Any, name: str) -> int | None:
    if not isinstance(usage, dict):
        return None
    value = usage.get(name)
    return int(value) if isinstance(value, int | float) else None


def _backfill() -> None:
    bind = op.get_bind()
    messages = sa.table(
        "messages",
        sa.column("id", sa.String()),
        sa.column("conversation_id", sa.String()),
        sa.column("role", sa.String()),
        sa.column("usage", sa.JSON()),
        sa.column("context_quality", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("prompt_tokens", sa.Integer()),
        sa.column("completion_tokens", sa.Integer()),
        sa.column("quality_level", sa.String()),
    )
    conversations = sa.table(
        "conversations", sa.column("id", sa.String()), sa.column("chatbot_id", sa.String())
    )
    chatbots = sa.table("chatbots", sa.column("id", sa.String()), sa.column("org_id", sa.String()))
    rows = bind.execute(
        sa.select(
            messages.c.id,
            messages.c.usage,
            messages.c.context_quality,
            messages.c.created_at,
            conversations.c.chatbot_id,
            chatbots.c.org_id,
        )
        .select_from(
            messages.join(conversations, conversations.c.id == messages.c.conversation_id).join(
                chatbots, chatbots.c.id == conversations.c.chatbot_id
            )
        )
        .where(messages.c.role == "assistant")
    ).all()
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        prompt = _tokens(row.usage, "prompt_tokens")
        completion = _tokens(row.usage, "completion_tokens")
        quality = row.context_quality if isinstance(row.context_quality, dict) else {}
        level = quality.get("level")
        bind.execute(
            messages.update()
            .where(messages.c.id == row.id)
            .values(
                prompt_tokens=prompt,
                completion_tokens=completion,
                quality_level=level if isinstance(level, str) else None,
            )
        )
        created = row.created_at
        period = created.strftime("%Y-%m") if hasattr(created, "strftime") else str(created)[:7]
        for scope, scope_id in (("org", row.org_id), ("chatbot", row.chatbot_id)):
            counter = totals[(scope, scope_id, period)]
            counter[0] += prompt or 0
            counter[1] += completion or 0
    if totals:
        counters = sa.table(
            "usage_counters",
            sa.column("scope", sa.String()),
            sa.column("scope_id", sa.String()),
            sa.column("period", sa.String()),
            sa.column("prompt_tokens", sa.BigInteger()),
            sa.column("completion_tokens", sa.BigInteger()),
        )
        op.bulk_insert(
            counters,
            [
                {
                    "scope": scope,
                    "scope_id": scope_id,
                    "period": period,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                }
                for (scope, scope_id, period), (prompt, completion) in totals.items()
            ],
        )


def downgrade() -> None:
    op.drop_table("gate_rejections")
    op.drop_table("usage_counters")
    op.drop_table("feedback")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("quality_level")
        batch.drop_column("completion_tokens")
        batch.drop_column("prompt_tokens")
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column("monthly_token_budget")
