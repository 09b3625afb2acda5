"""Real round trips: create, verify, deep verify, damage the data, restore, compare."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import backups
from tests.backups_helpers import (
    load_chinook_sqlite,
    load_pagila,
    load_sakila,
    state_of,
    workspace,
)


def _round_trip(ws, name: str, damage: str) -> dict:
    target = ws.target(name)
    before = state_of(target)
    backup = backups.create_backup(ws, name, label="before the bad script")

    assert backup.tables == before["tables"]
    assert stat.S_IMODE(backup.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.manifest_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.path.parent.stat().st_mode) == 0o700
    manifest = json.loads(backup.manifest_path.read_text())
    assert manifest["sha256"] == backup.sha256 and manifest["format_version"] == 1
    assert manifest["size"] == backup.path.stat().st_size

    plain = backups.verify_backup(ws, backup.id)
    assert plain.ok, plain.problems
    deep = backups.verify_backup(ws, backup.id, deep=True)
    assert deep.ok, deep.problems
    assert backups.get_backup(ws, backup.id).deep_verify_ok is True

    with target.engine().begin() as conn:
        conn.execute(sa.text(damage))
    target.dispose()
    assert state_of(target)["tables"] != before["tables"]

    plan = backups.plan_restore(ws, backup.id)
    assert plan.kind == "backup.restore" and plan.destructive
    assert plan.safety_backup is not None
    changed = {t["table"]: t for t in plan.summary["tables"]}
    assert any(t["rows_now"] != t["rows_in_backup"] for t in changed.values())
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    assert outcome.ok, (outcome.error, outcome.report)
    assert all(check["ok"] for check in outcome.postconditions)

    after = state_of(target)
    assert after == before
    safety = backups.get_backup(ws, outcome.results["safety_backup_id"])
    assert not safety.pinned  # released once the restore was verified
    assert safety.tables != before["tables"]  # it holds the damaged state
    return after


def test_postgresql_pagila_round_trip(tmp_path: Path, pg_url: str) -> None:
    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    after = _round_trip(
        ws,
        "pagila",
        "delete from payment where amount < 3; "
        "drop view sales_by_store; create table oops (x int)",
    )
    assert after["tables"]["rental"] == 16044
    assert after["tables"]["payment"] == 16049
    assert after["objects"]["triggers"] > 0 and after["objects"]["views"] > 0
    assert after["objects"]["routines"] > 0
    with ws.target("pagila").engine().connect() as conn:
        # A table made after the backup is gone: the schema is as it was.
        assert not sa.inspect(conn).has_table("oops")
        assert conn.execute(sa.text("select count(*) from pg_matviews")).scalar() == 1
    ws.close()


def test_mariadb_sakila_round_trip_keeps_four_byte_characters(
    tmp_path: Path, mysql_url: str
) -> None:
    load_sakila(mysql_url)
    ws = workspace(tmp_path, mysql_url, "sakila")
    emoji = "Pin\U0001f4cc \U0001f600 \U00020bb7 caf\u00e9"
    with ws.target("sakila").engine().begin() as conn:
        conn.execute(
            sa.text(
                "alter table actor convert to character set utf8mb4 "
                "collate utf8mb4_unicode_ci"
            )
        )
        conn.execute(
            sa.text("update actor set first_name = :v where actor_id = 1"), {"v": emoji}
        )
    after = _round_trip(ws, "sakila", "delete from payment where amount < 3")
    assert after["tables"]["rental"] == 16044 and after["tables"]["film_text"] == 1000
    assert after["objects"] == {"views": 7, "triggers": 6, "routines": 6}
    with ws.target("sakila").engine().connect() as conn:
        assert (
            conn.execute(
                sa.text("select first_name from actor where actor_id = 1")
            ).scalar()
            == emoji
        )
    first = backups.list_backups(ws, "sakila")[-1]  # newest first: the oldest
    assert any("film_text uses the MyISAM engine" in n for n in first.manifest["notes"])
    ws.close()


def test_sqlite_chinook_round_trip_in_wal_mode(tmp_path: Path, sqlite_url: str) -> None:
    path = load_chinook_sqlite(sqlite_url)
    import sqlite3

    with sqlite3.connect(path) as db:
        assert db.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
    # A writer that has committed into the WAL, not yet checkpointed to the file.
    writer = sqlite3.connect(path)
    writer.execute("pragma wal_autocheckpoint=0")
    writer.execute("insert into Genre (GenreId, Name) values (999, 'Only in WAL')")
    writer.commit()
    assert Path(f"{path}-wal").stat().st_size > 0
    ws = workspace(tmp_path, sqlite_url, "chinook")
    after = _round_trip(ws, "chinook", "delete from InvoiceLine where InvoiceId > 10")
    writer.close()
    assert after["tables"]["Track"] == 3503 and after["tables"]["InvoiceLine"] == 2240
    assert after["tables"]["Genre"] == 26  # the row that was only in the WAL
    assert after["objects"]["views"] == 1 and after["objects"]["triggers"] == 1
    ws.close()


def test_restore_into_another_database(tmp_path: Path, sqlite_url: str) -> None:
    load_chinook_sqlite(sqlite_url)
    ws = workspace(tmp_path, sqlite_url, "chinook")
    backup = backups.create_backup(ws, "chinook")
    other = tmp_path / "elsewhere.db"
    plan = backups.plan_restore(ws, backup.id, into=f"sqlite:///{other}")
    assert plan.safety_backup is None  # nothing there yet to lose
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    assert outcome.ok, outcome.error
    copy = backups.restore_target(ws, plan)
    assert state_of(copy)["tables"] == backup.tables
    assert os.path.exists(sa.engine.make_url(sqlite_url).database or "")
    ws.close()


def test_a_backup_of_another_dialect_is_refused(
    tmp_path: Path, sqlite_url: str, pg_url: str
) -> None:
    load_chinook_sqlite(sqlite_url)
    ws = workspace(tmp_path, sqlite_url, "chinook")
    backup = backups.create_backup(ws, "chinook")
    with pytest.raises(Exception) as raised:
        backups.plan_restore(ws, backup.id, into=pg_url)
    assert "sqlite backup" in str(raised.value)
    assert getattr(raised.value, "exit_code", None) == 3
    ws.close()
