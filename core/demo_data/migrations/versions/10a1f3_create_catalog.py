"""create catalog

The record shop's catalogue: genres, media types, artists, albums and tracks.

Revision ID: 10a1f3
Revises:
Create Date: 2026-09-01 09:12:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "10a1f3"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "genres",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
    )
    op.create_table(
        "media_types",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
    )
    op.create_table(
        "artists",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
    )
    op.create_table(
        "albums",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(160), nullable=False),
        sa.Column("artist_id", sa.Integer, sa.ForeignKey("artists.id"), nullable=False),
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("album_id", sa.Integer, sa.ForeignKey("albums.id")),
        sa.Column(
            "media_type_id", sa.Integer, sa.ForeignKey("media_types.id"), nullable=False
        ),
        sa.Column("genre_id", sa.Integer, sa.ForeignKey("genres.id")),
        sa.Column("composer", sa.String(220)),
        sa.Column("milliseconds", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
    )
    op.create_index("ix_albums_artist_id", "albums", ["artist_id"])
    op.create_index("ix_tracks_album_id", "tracks", ["album_id"])


def downgrade() -> None:
    op.drop_index("ix_tracks_album_id", table_name="tracks")
    op.drop_index("ix_albums_artist_id", table_name="albums")
    op.drop_table("tracks")
    op.drop_table("albums")
    op.drop_table("artists")
    op.drop_table("media_types")
    op.drop_table("genres")
