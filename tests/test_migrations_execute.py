"""Running migration plans through the executor on the three dialects."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import migrations, snapshots
from core.errors import DbrError, Refused
from core.events import Bus
from core.executor import Executor
from core.journal import Journal
from core.state import Store
from tests.migrations_helpers import (
    Rev,
    alembic_upgrade,
    create_table,
    heads,
    table_revs,
    tables,
    target_for,
    write_project,
)

FAILING_DOWN = """
op.drop_table("t_r3")
op.execute("DROP TABLE no_such_table")
"""
LIVE_DOWN = """
bind = op.get_bind()
largest = bind.execute(sa.text("select max(id) from t_r1")).scalar()
op.execute(f"DELETE FROM t_r1 WHERE id = {largest}")
"""


@pytest.fixture
def executor(state_url: str) -> Executor:
    journal = Journal(Store(state_url))
    bus = Bus()
    bus.subscribe(journal.record)
    return Executor(journal, bus)


def test_downgrade_then_upgrade_with_snapshots_and_safety_backup(
    any_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(tmp_path, table_revs("r1", "r2", "r3"))
    alembic_upgrade(any_url, ini)
    target = target_for(any_url, ini, backup_dir=tmp_path / "backups")
    plan = migrations.plan(target, "-2", journal=executor.journal)
    assert plan.steps[0].estimate is None

    outcome = executor.run(plan, target, confirmed=True)
    assert outcome.ok, outcome.error
    assert heads(any_url) == ["r1"]
    assert {"t_r2", "t_r3"}.isdisjoint(tables(any_url))
    assert outcome.results["safety backup"]["backup_id"]
    assert [c["ok"] for c in outcome.postconditions] == [True]
    recorded = snapshots.snapshots(executor.journal.store, target.name)
    assert [(s.label, s.operation_id) for s in recorded] == [
        ("after", outcome.operation_id),
        ("before", outcome.operation_id),
    ]
    change = snapshots.diff(recorded[1], recorded[0])
    assert change.tables_removed == ["t_r2", "t_r3"]
    assert recorded[1].tables["t_r3"]["rows"] == 3

    back = migrations.plan(
        target, "heads", direction="upgrade", journal=executor.journal
    )
    assert not back.destructive and back.safety_backup is None
    assert executor.run(back, target, confirmed=True).ok
    assert heads(any_url) == ["r3"]
    again = migrations.plan(target, "-2", journal=executor.journal)
    assert again.steps[0].estimate is not None  # from the first run


def test_failed_step_reports_where_the_database_is_and_what_stayed(
    any_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(
        tmp_path,
        [
            *table_revs("r1", "r2"),
            Rev("r3", "r2", upgrade=create_table("r3"), downgrade=FAILING_DOWN),
        ],
    )
    alembic_upgrade(any_url, ini)
    target = target_for(any_url, ini)
    plan = migrations.plan(target, "r1")
    outcome = executor.run(plan, target, confirmed=True, safety_backup=False)

    assert outcome.status == "failed" and outcome.failed_step == "downgrade r3"
    assert "no_such_table" in outcome.error
    assert outcome.report["database_at"] == "r3"
    assert outcome.report["what_to_do"]
    assert heads(any_url) == ["r3"]
    if any_url.startswith("mysql"):
        # DDL commits at once there: the report says what the step already did.
        assert "t_r3" not in tables(any_url)
        assert outcome.report["committed_by_failed_step"] == ["table t_r3 removed"]
    else:
        assert "t_r3" in tables(any_url)
        assert outcome.report["failed_step_effect"].startswith("rolled back")
    steps = executor.journal.operation(outcome.operation_id)["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("downgrade r3", "failed"),
        ("downgrade r2", "skipped"),
    ]
    labels = [s.label for s in snapshots.snapshots(executor.journal.store, "t")]
    assert labels == ["after", "before"]


def test_a_migration_using_the_live_connection_runs(
    any_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(
        tmp_path, [*table_revs("r1"), Rev("r2", "r1", downgrade=LIVE_DOWN)]
    )
    alembic_upgrade(any_url, ini)
    target = target_for(any_url, ini)
    plan = migrations.plan(target, "r1")
    assert plan.steps[0].not_previewable
    outcome = executor.run(plan, target, confirmed=True, safety_backup=False)
    assert outcome.ok, outcome.error
    assert snapshots.take(target).tables["t_r1"]["rows"] == 2


def test_batch_mode_sqlite_downgrade_keeps_the_rows(
    sqlite_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(
        tmp_path,
        [
            *table_revs("r1"),
            Rev(
                "r2",
                "r1",
                upgrade='with op.batch_alter_table("t_r1") as b:\n'
                '    b.add_column(sa.Column("note", sa.String(9)))\n'
                '    b.create_index("ix_note", ["note"])',
                downgrade='with op.batch_alter_table("t_r1") as b:\n'
                '    b.drop_index("ix_note")\n    b.drop_column("note")',
            ),
        ],
        batch=True,
    )
    alembic_upgrade(sqlite_url, ini)
    target = target_for(sqlite_url, ini)
    plan = migrations.plan(target, "-1")
    risk = next(r for r in plan.risks if r.kind == "drop_column")
    assert (risk.table, risk.column, risk.rows) == ("t_r1", "note", 0)
    assert "batch mode" in risk.message

    outcome = executor.run(plan, target, confirmed=True, safety_backup=False)
    assert outcome.ok, outcome.error
    after = snapshots.take(target).tables["t_r1"]
    assert "note" not in after["columns"] and after["rows"] == 3


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "pg_url"])
def test_trial_runs_everything_then_rolls_back(
    url_fixture: str, request: pytest.FixtureRequest, tmp_path: Path, executor: Executor
) -> None:
    url = request.getfixturevalue(url_fixture)
    ini = write_project(tmp_path, table_revs("r1", "r2", "r3"))
    alembic_upgrade(url, ini)
    target = target_for(url, ini)
    plan = migrations.trial_plan(target, "base")
    outcome = executor.run(plan, target, confirmed=True)

    assert outcome.ok, outcome.error
    assert outcome.results["trial downgrade"] == {
        "revisions_run": 3,
        "heads_reached": [],
        "rolled_back": True,
    }
    assert heads(url) == ["r3"]
    assert {"t_r1", "t_r2", "t_r3"} <= tables(url)


def test_trial_on_mariadb_is_refused_with_the_reason(
    mysql_url: str, tmp_path: Path
) -> None:
    ini = write_project(tmp_path, table_revs("r1"))
    alembic_upgrade(mysql_url, ini)
    with pytest.raises(Refused, match="cannot trial") as refused:
        migrations.trial_plan(target_for(mysql_url, ini), "base")
    assert "commit each DDL statement" in refused.value.cause


def test_trial_refuses_an_env_py_that_opens_its_own_connection(
    sqlite_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(tmp_path, table_revs("r1", "r2"), own_engine=True)
    alembic_upgrade(sqlite_url, ini)
    target = target_for(sqlite_url, ini)
    outcome = executor.run(
        migrations.trial_plan(target, "base"), target, confirmed=True
    )
    assert outcome.status == "failed"
    assert "opens its own connection" in outcome.error
    assert heads(sqlite_url) == ["r2"] and {"t_r1", "t_r2"} <= tables(sqlite_url)


def test_a_database_moved_since_planning_is_not_touched(
    sqlite_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(tmp_path, table_revs("r1", "r2", "r3"))
    alembic_upgrade(sqlite_url, ini)
    target = target_for(sqlite_url, ini)
    plan = migrations.plan(target, "r1")
    alembic_upgrade(sqlite_url, ini, "heads")  # nothing to do
    from alembic import command
    from alembic.config import Config

    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", sqlite_url)
    command.downgrade(config, "r2")  # someone else moved it
    outcome = executor.run(plan, target, confirmed=True, safety_backup=False)
    assert outcome.status == "failed" and "plan again" in outcome.error
    assert heads(sqlite_url) == ["r2"] and "t_r2" in tables(sqlite_url)


CONCURRENT_UP = """
op.create_table("big", sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("name", sa.String(20)))
"""
CONCURRENT_INDEX = """
with op.get_context().autocommit_block():
    op.execute("{sql}")
"""


def test_a_revision_with_an_autocommit_block_runs_but_is_not_trialled(
    pg_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(
        tmp_path,
        [
            Rev("r1", None, upgrade=CONCURRENT_UP, downgrade='op.drop_table("big")'),
            Rev(
                "r2",
                "r1",
                upgrade=CONCURRENT_INDEX.format(
                    sql="CREATE INDEX CONCURRENTLY ix_big_name ON big (name)"
                ),
                downgrade=CONCURRENT_INDEX.format(
                    sql="DROP INDEX CONCURRENTLY ix_big_name"
                ),
            ),
        ],
    )
    alembic_upgrade(pg_url, ini)
    target = target_for(pg_url, ini)
    with pytest.raises(Refused, match="autocommit_block"):
        migrations.trial_plan(target, "r1")

    plan = migrations.plan(target, "r1")
    assert plan.steps[0].transactional is False
    assert any(r.kind == "autocommit" for r in plan.risks)
    outcome = executor.run(plan, target, confirmed=True, safety_backup=False)
    assert outcome.ok, outcome.error
    assert heads(pg_url) == ["r1"]
    assert snapshots.take(target).tables["big"]["indexes"] == []
    assert executor.run(
        migrations.plan(target, "heads", direction="upgrade"), target, confirmed=True
    ).ok
    assert snapshots.take(target).tables["big"]["indexes"] == ["ix_big_name (name)"]


def test_an_env_py_pointing_elsewhere_is_refused(
    sqlite_url: str, tmp_path: Path, executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = write_project(tmp_path / "p", table_revs("r1", "r2"), own_engine=True)
    alembic_upgrade(sqlite_url, ini)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    alembic_upgrade(other, ini)
    env = tmp_path / "p" / "migrations" / "env.py"
    env.write_text(
        env.read_text().replace(
            "engine = engine_from_config(config.get_section(config.config_ini_section, {}),"
            '\n                                prefix="sqlalchemy.", poolclass=pool.NullPool)',
            "import os, sqlalchemy\n    engine = sqlalchemy.create_engine("
            'os.environ["DATABASE_URL"])',
        )
    )
    monkeypatch.setenv("DATABASE_URL", other)
    target = target_for(sqlite_url, ini)
    with pytest.raises(DbrError, match="connected to another database"):
        migrations.plan(target, "r1")
    assert heads(other) == ["r2"] and heads(sqlite_url) == ["r2"]


def test_first_upgrade_of_an_empty_database(
    any_url: str, tmp_path: Path, executor: Executor
) -> None:
    ini = write_project(tmp_path, table_revs("r1", "r2"))
    target = target_for(any_url, ini)
    assert [p.kind for p in migrations.current(target).problems] == [
        "missing_version_table"
    ]
    plan = migrations.plan(target, "heads", direction="upgrade")
    assert plan.summary["from"] == [] and plan.summary["to"] == ["r2"]
    assert executor.run(plan, target, confirmed=True).ok
    assert heads(any_url) == ["r2"] and migrations.current(target).at_head
