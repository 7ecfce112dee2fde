"""Sessions bound to visitors: the visitor id a conversation belongs to.

A chatbot that requires visitor tokens knows who each visitor is; a conversation it starts
records that visitor, and only they may read, rate or extend it. Existing conversations get
no visitor (NULL): the first visitor to use one with a token then binds it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("visitor_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("visitor_id")
