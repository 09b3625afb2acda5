"""Tables the target has and the backup lacks: the plan says what the restore will
do to them, and the restore does exactly that (real servers, real dump tools)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from core import backups
from core.backups import inspect
from tests.backups_helpers import workspace


def _sql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def _tables(url: str, dialect: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = inspect.row_counts(conn, dialect)
    engine.dispose()
    return counts


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "console.cli",
            "--config",
            str(tmp_path / "dbr.toml"),
            *argv,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )


def _risks(plan) -> dict[str, list]:
    found: dict[str, list] = {}
    for risk in plan.risks:
        found.setdefault(risk.kind, []).append(risk)
    return found


def test_postgresql_restore_drops_extra_tables_of_its_schemas_and_says_so(
    tmp_path: Path, pg_url: str
) -> None:
    _sql(
        pg_url,
        "create table items (id int primary key)",
        "insert into items values (1), (2), (3)",
    )
    ws = workspace(tmp_path, pg_url, "shop")
    backup = backups.create_backup(ws, "shop")
    _sql(
        pg_url,
        "create table keepme2 (id int)",
        "insert into keepme2 values (1), (2)",
        "create schema side",
        "create table side.notes (id int)",
        "insert into side.notes values (1)",
    )

    plan = backups.plan_restore(ws, backup.id)
    risks = _risks(plan)
    dropped = risks["table_dropped"]
    assert [(r.table, r.rows, r.severity) for r in dropped] == [
        ("keepme2", 2, "critical")
    ]
    assert "DROPPED" in dropped[0].message
    assert [r.message for r in risks["left_in_place"]] == [
        "not in the backup, left as they are: side.notes"
    ]
    fate = {t["table"]: t["after_restore"] for t in plan.summary["tables"]}
    assert fate == {
        "items": "from the backup",
        "keepme2": "dropped",
        "side.notes": "left as is",
    }

    preview = _cli(tmp_path, "backups", "restore", backup.id)  # no --yes: refused
    assert preview.returncode == 3, preview.stderr
    shown = preview.stdout + preview.stderr
    assert "keepme2: not in the backup, DROPPED by the restore with its 2 rows" in shown
    assert "left as they are: keepme2" not in shown

    done = _cli(tmp_path, "backups", "restore", backup.id, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    # What the plan said: keepme2 is gone, side.notes (another schema) is kept.
    assert _tables(pg_url, "postgresql") == {"items": 3, "side.notes": 1}
    ws.close()


def test_mariadb_restore_leaves_extra_tables_as_the_plan_says(
    tmp_path: Path, mysql_url: str
) -> None:
    _sql(
        mysql_url,
        "create table items (id int primary key)",
        "insert into items values (1), (2), (3)",
    )
    ws = workspace(tmp_path, mysql_url, "shop")
    backup = backups.create_backup(ws, "shop")
    _sql(
        mysql_url,
        "create table keepme2 (id int)",
        "insert into keepme2 values (1), (2)",
        "insert into items values (4)",
    )

    plan = backups.plan_restore(ws, backup.id)
    risks = _risks(plan)
    assert "table_dropped" not in risks
    assert [r.message for r in risks["left_in_place"]] == [
        "not in the backup, left as they are: keepme2"
    ]
    # items gained a row the restore loses; keepme2, left as it is, loses none.
    assert [(r.table, r.rows) for r in risks["rows_lost"]] == [("items", 1)]
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    assert outcome.ok, outcome.error
    assert _tables(mysql_url, "mysql") == {"items": 3, "keepme2": 2}
    ws.close()


def test_sqlite_restore_replaces_the_file_and_says_extra_tables_go(
    tmp_path: Path, sqlite_url: str
) -> None:
    _sql(
        sqlite_url,
        "create table items (id int primary key)",
        "insert into items values (1), (2), (3)",
    )
    ws = workspace(tmp_path, sqlite_url, "shop")
    backup = backups.create_backup(ws, "shop")
    _sql(
        sqlite_url,
        "create table keepme2 (id int)",
        "insert into keepme2 values (1), (2)",
    )

    plan = backups.plan_restore(ws, backup.id)
    risks = _risks(plan)
    assert [(r.table, r.rows, r.severity) for r in risks["table_dropped"]] == [
        ("keepme2", 2, "critical")
    ]
    assert "left_in_place" not in risks
    assert "rows_lost" not in risks  # said once, as the table dropped
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    assert outcome.ok, outcome.error
    assert _tables(sqlite_url, "sqlite") == {"items": 3}
    ws.close()
