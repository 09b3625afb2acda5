"""The first state store: journal, locks, backups index, health samples, snapshots.

Revision ID: 0001
Revises:
"""

from alembic import op

from core import state

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "operations",
    "steps",
    "events",
    "locks",
    "backups",
    "health_samples",
    "schema_snapshots",
)


def upgrade() -> None:
    # The first revision creates the tables as core.state defines them today; later
    # revisions must spell out their changes instead of reading core.state.
    bind = op.get_bind()
    for name in TABLES:
        state.metadata.tables[name].create(bind)


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
