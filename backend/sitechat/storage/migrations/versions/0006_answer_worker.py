"""Answers that outlive their connection: which process generates a streaming answer, so
the orphan sweeper can tell an answer in flight from one whose process died.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STREAMING = sa.text("status = 'streaming'")


def upgrade() -> None:
    # In place (no batch rebuild) on SQLite too: rebuilding would cascade to nothing here,
    # but it would rewrite every message.
    op.add_column("messages", sa.Column("worker_id", sa.String(length=32), nullable=True))
    # Partial: only the few answers streaming right now, not every message ever written.
    op.create_index(
        "ix_messages_streaming",
        "messages",
        ["created_at"],
        postgresql_where=STREAMING,
        sqlite_where=STREAMING,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_streaming", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("worker_id")
