"""Downgrade plans: steps in order, offline SQL, live risk numbers, ambiguity."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core import migrations
from core.errors import ConfigError
from core.migrations import AmbiguousTarget
from tests.migrations_helpers import (
    Rev,
    alembic_upgrade,
    create_table,
    target_for,
    write_project,
)

NOTE_UP = """
op.add_column("t_r1", sa.Column("note", sa.String(20)))
op.execute("UPDATE t_r1 SET note = 'kept' WHERE id < 3")
"""
LIVE_DOWN = """
bind = op.get_bind()
largest = bind.execute(sa.text("select max(id) from t_r1")).scalar()
op.execute(f"DELETE FROM t_r1 WHERE id = {largest}")
"""


def three(tmp_path: Path, **kw: object) -> Path:
    return write_project(
        tmp_path,
        [
            Rev(
                "r1",
                None,
                upgrade=create_table("r1"),
                downgrade='op.drop_table("t_r1")',
            ),
            Rev(
                "r2", "r1", upgrade=NOTE_UP, downgrade='op.drop_column("t_r1", "note")'
            ),
            Rev(
                "r3",
                "r2",
                upgrade=create_table("r3", rows=5),
                downgrade='op.drop_table("t_r3")',
            ),
        ],
        **kw,
    )


def test_plan_lists_steps_sql_and_what_they_destroy(
    any_url: str, tmp_path: Path
) -> None:
    ini = three(tmp_path)
    alembic_upgrade(any_url, ini)
    target = target_for(any_url, ini, backup_dir=tmp_path / "backups")
    plan = migrations.plan(target, "r1")

    assert [s.detail["revision"] for s in plan.steps] == ["r3", "r2"]
    assert plan.summary["from"] == ["r3"] and plan.summary["to"] == ["r1"]
    assert "DROP TABLE t_r3" in plan.steps[0].sql
    assert "DROP COLUMN NOTE" in plan.steps[1].sql.upper().replace("`", "")
    risks = {(r.kind, r.table, r.column): r for r in plan.risks}
    assert risks[("drop_table", "t_r3", None)].rows == 5
    assert risks[("drop_column", "t_r1", "note")].rows == 2
    assert risks[("drop_table", "t_r3", None)].severity == "critical"
    assert plan.destructive and plan.safety_backup is not None
    transactional = not any_url.startswith("mysql")
    assert plan.transactional is transactional
    assert any(r.kind == "non_transactional" for r in plan.risks) is not transactional
    assert plan.postconditions[0].description == "the version table holds r1"
    shape = plan.to_dict()
    assert {"target", "from", "to", "steps", "risks", "transactional"} <= set(shape)
    assert {"revision", "sql", "not_previewable"} <= set(shape["steps"][0])
    assert {"kind", "table", "column", "rows"} <= set(shape["risks"][0])


def test_a_step_needing_the_live_connection_is_marked_and_the_rest_shows(
    any_url: str, tmp_path: Path
) -> None:
    ini = write_project(
        tmp_path,
        [
            Rev(
                "r1",
                None,
                upgrade=create_table("r1"),
                downgrade='op.drop_table("t_r1")',
            ),
            Rev("r2", "r1", downgrade=LIVE_DOWN),
            Rev(
                "r3",
                "r2",
                upgrade=create_table("r3"),
                downgrade='op.drop_table("t_r3")',
            ),
        ],
    )
    alembic_upgrade(any_url, ini)
    plan = migrations.plan(target_for(any_url, ini), "base")

    sql = [
        (s.detail["revision"], s.sql is not None, s.not_previewable) for s in plan.steps
    ]
    assert [(rev, has_sql) for rev, has_sql, _ in sql] == [
        ("r3", True),
        ("r2", False),
        ("r1", True),
    ]
    assert sql[1][2].startswith("cannot render offline")
    assert "DROP TABLE t_r1" in plan.steps[2].sql
    assert any(r.kind == "uses_connection" for r in plan.risks)


def test_nothing_to_do_is_an_empty_plan(sqlite_url: str, tmp_path: Path) -> None:
    ini = three(tmp_path)
    alembic_upgrade(sqlite_url, ini)
    plan = migrations.plan(target_for(sqlite_url, ini), "heads", direction="upgrade")
    assert plan.steps == [] and plan.summary["to"] == ["r3"]


def branches(tmp_path: Path) -> Path:
    return write_project(
        tmp_path,
        [
            Rev("a", None, upgrade=create_table("a")),
            Rev(
                "b",
                "a",
                upgrade=create_table("b"),
                downgrade='op.drop_table("t_b")',
                branch_labels=("left",),
            ),
            Rev(
                "c",
                "a",
                upgrade=create_table("c"),
                downgrade='op.drop_table("t_c")',
                branch_labels=("right",),
            ),
        ],
    )


def test_relative_target_on_several_heads_is_refused_with_choices(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = branches(tmp_path)
    alembic_upgrade(sqlite_url, ini)
    target = target_for(sqlite_url, ini)
    with pytest.raises(AmbiguousTarget) as refused:
        migrations.plan(target, "-1")
    assert refused.value.choices == ["left@-1", "right@-1"]
    assert "left@-1" in refused.value.cause

    left = migrations.plan(target, "left@-1")
    assert [s.detail["revision"] for s in left.steps] == ["b"]
    assert left.summary["to"] == ["c"]
    right = migrations.plan(target, "right@a")
    assert [s.detail["revision"] for s in right.steps] == ["c"]
    assert right.summary["to"] == ["b"]


def test_unknown_and_ambiguous_prefixes_are_config_errors(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(
        tmp_path, [Rev("abc1", None), Rev("abc2", "abc1"), Rev("zz", "abc2")]
    )
    alembic_upgrade(sqlite_url, ini)
    target = target_for(sqlite_url, ini)
    with pytest.raises(ConfigError, match="nope"):
        migrations.plan(target, "nope")
    with pytest.raises(ConfigError, match="abc"):
        migrations.plan(target, "abc")
    assert [s.detail["revision"] for s in migrations.plan(target, "abc1").steps] == [
        "zz",
        "abc2",
    ]


def test_empty_downgrade_is_flagged_irreversible_but_a_merge_is_not(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(
        tmp_path,
        [
            Rev("a", None, upgrade=create_table("a")),
            Rev("b", "a"),
            Rev("c", "a"),
            Rev("m", ("b", "c")),
            Rev("d", "m", upgrade="op.execute(\"UPDATE t_a SET name = 'x'\")"),
        ],
    )
    alembic_upgrade(sqlite_url, ini)
    plan = migrations.plan(target_for(sqlite_url, ini), "a")
    flagged = sorted(
        r.message.split(":")[0] for r in plan.risks if r.kind == "irreversible"
    )
    assert flagged == ["b", "c", "d"]
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:  # planning changed nothing
        assert (
            conn.execute(
                sa.text("select version_num from alembic_version")
            ).scalar_one()
            == "d"
        )
    engine.dispose()


def test_an_upgrade_that_drops_data_is_flagged_too(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(
        tmp_path,
        [
            Rev("r1", None, upgrade=create_table("r1")),
            Rev(
                "r2",
                "r1",
                upgrade='op.drop_column("t_r1", "name")',
                downgrade='op.add_column("t_r1", sa.Column("name", sa.String(20)))',
            ),
        ],
    )
    alembic_upgrade(sqlite_url, ini, "r1")
    plan = migrations.plan(target_for(sqlite_url, ini), "heads", direction="upgrade")
    risk = next(r for r in plan.risks if r.kind == "drop_column")
    assert (risk.table, risk.column, risk.rows, risk.severity) == (
        "t_r1",
        "name",
        3,
        "critical",
    )
    assert plan.destructive and not any(r.kind == "irreversible" for r in plan.risks)
