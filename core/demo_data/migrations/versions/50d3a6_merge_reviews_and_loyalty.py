"""merge reviews and loyalty

Joins the two branches again; it changes nothing itself.

Revision ID: 50d3a6
Revises: 41ee5a, 42c8b0
Create Date: 2026-09-22 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "50d3a6"
down_revision: str | Sequence[str] | None = ("41ee5a", "42c8b0")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
