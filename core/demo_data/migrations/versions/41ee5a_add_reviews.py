"""add track reviews

Starts the "reviews" branch. Its downgrade drops the reviews table, and every
review customers wrote goes with it.

Revision ID: 41ee5a
Revises: 30b2d9
Create Date: 2026-09-15 16:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "41ee5a"
down_revision: str | Sequence[str] | None = "30b2d9"
branch_labels: str | Sequence[str] | None = ("reviews",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False
        ),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_reviews_rating"),
        sa.UniqueConstraint("customer_id", "track_id", name="uq_reviews_customer"),
    )
    op.create_index("ix_reviews_track_id", "reviews", ["track_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_track_id", table_name="reviews")
    op.drop_table("reviews")
