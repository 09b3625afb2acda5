"""create orders and order lines

Revision ID: 30b2d9
Revises: 20c4e7
Create Date: 2026-09-08 10:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "30b2d9"
down_revision: str | Sequence[str] | None = "20c4e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False
        ),
        sa.Column("ordered_at", sa.DateTime, nullable=False),
        sa.Column("billing_city", sa.String(40)),
        sa.Column("billing_country", sa.String(40)),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
    )
    # The health checks ask for recent orders; this keeps that query cheap.
    op.create_index("ix_orders_ordered_at", "orders", ["ordered_at"])
    op.create_index("ix_order_lines_order_id", "order_lines", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_order_lines_order_id", table_name="order_lines")
    op.drop_index("ix_orders_ordered_at", table_name="orders")
    op.drop_table("order_lines")
    op.drop_table("orders")
