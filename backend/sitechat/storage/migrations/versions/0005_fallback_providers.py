"""Fallback chains: the providers a chatbot's answer goes to when its own provider fails
before the first token.

Existing chatbots get an empty list: they use the deployment's ``fallback_providers``. The
column keeps its server default of ``[]``, so SQLite adds it in place: rebuilding the table
(what batch mode does to drop a default) would cascade-delete every conversation of every
chatbot, their foreign keys being enforced.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chatbots",
        sa.Column("fallback_providers", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    with op.batch_alter_table("chatbots") as batch:
        batch.drop_column("fallback_providers")
