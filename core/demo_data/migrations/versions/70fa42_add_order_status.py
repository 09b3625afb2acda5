"""add order status

Revision ID: 70fa42
Revises: 60e91c
Create Date: 2026-10-20 17:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "70fa42"
down_revision: str | Sequence[str] | None = "60e91c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("status", sa.String(16), nullable=False, server_default="paid"),
    )


def downgrade() -> None:
    # Dropped in place rather than by a batch copy, so --sql can render it.
    op.drop_column("orders", "status")
