"""Unanswered questions: the owner's "resolved" marks, and a partial index on the answers
that had no (or little) context, which is all the report reads of the messages table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNANSWERED = sa.text("quality_level IN ('none', 'low')")


def upgrade() -> None:
    op.create_table(
        "unanswered_resolutions",
        sa.Column("chatbot_id", sa.String(length=64), nullable=False),
        sa.Column("question_id", sa.String(length=32), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chatbot_id"],
            ["chatbots.id"],
            name=op.f("fk_unanswered_resolutions_chatbot_id_chatbots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "chatbot_id", "question_id", name=op.f("pk_unanswered_resolutions")
        ),
    )
    # Partial: only answers without enough context, a small share of all messages. Created
    # in place (no batch rebuild of ``messages``, which on SQLite would cascade deletes).
    op.create_index(
        "ix_messages_unanswered",
        "messages",
        ["conversation_id", "created_at"],
        postgresql_where=UNANSWERED,
        sqlite_where=UNANSWERED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_unanswered", table_name="messages")
    op.drop_table("unanswered_resolutions")
