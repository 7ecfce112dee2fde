"""Answer scope: whether a chatbot answers from its documents only (the default) or may add
general knowledge, marked as such.

Existing chatbots get ``documents_only``. The column keeps its server default, so SQLite
adds it in place: rebuilding the ``chatbots`` table (what batch mode does to change or drop
a column) would cascade-delete every conversation, their foreign keys being enforced.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chatbots",
        sa.Column(
            "answer_scope", sa.String(length=32), nullable=False, server_default="documents_only"
        ),
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), never a batch rebuild: see above.
    op.drop_column("chatbots", "answer_scope")
