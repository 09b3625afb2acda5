"""create staff and customers

Revision ID: 20c4e7
Revises: 10a1f3
Create Date: 2026-09-03 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20c4e7"
down_revision: str | Sequence[str] | None = "10a1f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_name", sa.String(40), nullable=False),
        sa.Column("last_name", sa.String(40), nullable=False),
        sa.Column("title", sa.String(40)),
        sa.Column("reports_to", sa.Integer, sa.ForeignKey("staff.id")),
        sa.Column("email", sa.String(80)),
        sa.Column("hired_on", sa.Date),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_name", sa.String(40), nullable=False),
        sa.Column("last_name", sa.String(40), nullable=False),
        sa.Column("company", sa.String(80)),
        sa.Column("city", sa.String(40)),
        sa.Column("state", sa.String(40)),
        sa.Column("country", sa.String(40)),
        sa.Column("postal_code", sa.String(10)),
        sa.Column("phone", sa.String(24)),
        sa.Column("email", sa.String(80), nullable=False, unique=True),
        sa.Column("support_rep_id", sa.Integer, sa.ForeignKey("staff.id")),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("customers")
    op.drop_table("staff")
