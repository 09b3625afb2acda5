"""The round-trip test in scratch databases dbr creates and drops."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core import migrations
from core.errors import Refused
from core.targets import make_engine
from tests.conftest import MYSQL_ADMIN, PG_ADMIN, unique_name
from tests.migrations_helpers import (
    Rev,
    alembic_upgrade,
    create_table,
    table_revs,
    target_for,
    write_project,
)

ENUM_UP = """
op.create_table("moods", sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("mood", sa.Enum("happy", "sad", name="mood")))
"""


def database_exists(admin_url: str, name: str) -> bool:
    engine = make_engine(admin_url)
    query = (
        "select 1 from pg_database where datname = :n"
        if "postgresql" in admin_url
        else "select 1 from information_schema.schemata where schema_name = :n"
    )
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query), {"n": name}).first() is not None
    finally:
        engine.dispose()


def scratch_url(admin_url: str) -> tuple[str, str]:
    name = unique_name("dbr_scratch")
    url = sa.engine.make_url(admin_url).set(database=name)
    return url.render_as_string(hide_password=False), name


def test_postgresql_enum_left_behind_is_reported(pg_url: str, tmp_path: Path) -> None:
    ini = write_project(
        tmp_path,
        [
            *table_revs("r1"),
            Rev("r2", "r1", upgrade=ENUM_UP, downgrade='op.drop_table("moods")'),
            Rev("r3", "r2", upgrade=create_table("r3")),
        ],
    )
    url, name = scratch_url(PG_ADMIN)
    result = migrations.roundtrip(target_for(pg_url, ini), url)

    statuses = {r.revision: r.status for r in result.revisions}
    # The type stays, so upgrading again fails on CREATE TYPE: the classic.
    assert statuses == {"r1": "ok", "r2": "failed", "r3": "not reached"}
    r2 = result.revisions[1]
    assert r2.leftovers == ["type enum mood added"]
    assert r2.detail.startswith("upgrade again failed: ")
    assert "left behind: type enum mood added" in r2.detail
    assert not result.ok and result.dropped
    assert not database_exists(PG_ADMIN, name)


def test_sqlite_round_trip_stops_at_a_failing_downgrade(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(
        tmp_path / "p",
        [
            *table_revs("r1", "r2"),
            Rev("m", "r2", upgrade="op.execute(\"UPDATE t_r1 SET name = 'x'\")"),
            Rev(
                "r4",
                "m",
                upgrade=create_table("r4"),
                downgrade='raise NotImplementedError("one way only")',
            ),
            Rev("r5", "r4", upgrade=create_table("r5")),
        ],
    )
    scratch = tmp_path / "scratch" / "s.db"
    seen: list[tuple[int, int]] = []
    result = migrations.roundtrip(
        target_for(sqlite_url, ini),
        f"sqlite:///{scratch}",
        progress=lambda d, t, m: seen.append((d, t)),
    )

    assert [(r.revision, r.status) for r in result.revisions] == [
        ("r1", "ok"),
        ("r2", "ok"),
        ("m", "noop"),
        ("r4", "failed"),
        ("r5", "not reached"),
    ]
    assert "upgrade changes data only" in result.revisions[2].detail
    assert result.revisions[3].detail == (
        "downgrade failed: NotImplementedError: one way only"
    )
    assert seen[0] == (0, 5) and not scratch.exists() and result.dropped


def test_mariadb_round_trip_of_a_branched_history(
    mysql_url: str, tmp_path: Path
) -> None:
    ini = write_project(
        tmp_path,
        [
            *table_revs("a"),
            Rev("b", "a", upgrade=create_table("b"), downgrade='op.drop_table("t_b")'),
            Rev(
                "c",
                "a",
                upgrade='op.add_column("t_a", sa.Column("c", sa.Integer))',
                downgrade='op.drop_column("t_a", "c")',
            ),
            Rev("d", ("b", "c")),
            Rev(
                "x",
                None,
                upgrade=create_table("x"),
                downgrade='op.drop_table("t_x")',
                depends_on=("c",),
            ),
        ],
    )
    url, name = scratch_url(MYSQL_ADMIN)
    result = migrations.roundtrip(target_for(mysql_url, ini), url)
    assert [r.status for r in result.revisions] == ["ok"] * 5, result.to_dict()
    order = [r.revision for r in result.revisions]
    assert order.index("x") > order.index("c") and order.index("d") > order.index("b")
    assert not database_exists(MYSQL_ADMIN, name)


def test_an_existing_scratch_database_is_refused_and_kept(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(tmp_path / "p", table_revs("r1"))
    existing = tmp_path / "keep.db"
    existing.write_bytes(b"")
    with pytest.raises(Refused, match="already exists"):
        migrations.roundtrip(target_for(sqlite_url, ini), f"sqlite:///{existing}")
    assert existing.exists()
    with pytest.raises(Refused, match="not the target's"):
        migrations.roundtrip(target_for(sqlite_url, ini), sqlite_url)


def test_copy_schema_walks_down_from_the_targets_own_schema(
    any_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(any_url)
    with engine.begin() as conn:  # a table that predates Alembic in this project
        conn.exec_driver_sql(
            "create table legacy (id integer primary key, name varchar(20))"
        )
        conn.exec_driver_sql("insert into legacy values (1, 'kept out')")
    engine.dispose()
    ini = write_project(
        tmp_path / "p",
        [
            Rev(
                "a1",
                None,
                upgrade='op.add_column("legacy", sa.Column("tier", sa.String(10)))',
                downgrade='op.drop_column("legacy", "tier")',
            ),
            Rev(
                "b2",
                "a1",
                upgrade=create_table("b2"),
                downgrade='op.drop_table("t_b2")',
            ),
            Rev(
                "c3",
                "b2",
                upgrade=create_table("c3"),
                downgrade='op.drop_table("t_c3")',
            ),
        ],
    )
    alembic_upgrade(any_url, ini, "b2")
    target = target_for(any_url, ini)
    if any_url.startswith("sqlite"):
        url, name = f"sqlite:///{tmp_path / 'scratch.db'}", None
    else:
        admin = PG_ADMIN if any_url.startswith("postgresql") else MYSQL_ADMIN
        url, name = scratch_url(admin)

    plain = migrations.roundtrip(target, url)
    assert plain.revisions[0].status == "failed"
    assert "--copy-schema" in plain.revisions[0].detail

    copied = migrations.roundtrip(target, url, copy_schema=True)
    assert [(r.revision, r.status) for r in copied.revisions] == [
        ("a1", "ok"),
        ("b2", "ok"),
        ("c3", "not reached"),
    ]
    assert copied.revisions[2].detail == "not applied on the target, so not tested"
    assert copied.ok and copied.dropped and copied.copied_schema
    if name is not None:
        assert not database_exists(admin, name)
    engine = sa.create_engine(any_url)
    with engine.connect() as conn:  # the target itself was only read
        assert conn.execute(sa.text("select count(*) from legacy")).scalar() == 1
    engine.dispose()
