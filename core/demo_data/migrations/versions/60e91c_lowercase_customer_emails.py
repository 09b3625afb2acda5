"""lowercase customer emails

A data migration with no way back: the original spelling of each address is
not kept, so the downgrade leaves the lowercase addresses as they are.

Revision ID: 60e91c
Revises: 50d3a6
Create Date: 2026-10-02 13:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "60e91c"
down_revision: str | Sequence[str] | None = "50d3a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE customers SET email = lower(email) WHERE email <> lower(email)")


def downgrade() -> None:
    pass
