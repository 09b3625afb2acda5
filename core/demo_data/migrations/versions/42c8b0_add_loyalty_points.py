"""add customer loyalty points

Starts the "loyalty" branch, written at the same time as the reviews branch.
Its downgrade drops a column that holds every customer's balance.

Revision ID: 42c8b0
Revises: 30b2d9
Create Date: 2026-09-16 11:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "42c8b0"
down_revision: str | Sequence[str] | None = "30b2d9"
branch_labels: str | Sequence[str] | None = ("loyalty",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("loyalty_points", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place; unlike a batch copy of the table,
    # this also renders in offline (--sql) mode, where nothing can be reflected.
    op.drop_column("customers", "loyalty_points")
