"""A PostgreSQL restore behind another session's open write transaction: it says
whom it waits for, and gives up after its lock timeout naming that session,
leaving the database as it was (real server, a real session holding the lock).
Both ways: in place (its DROP SCHEMA waits) and beside (the lock that holds off
writers until the swap waits)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import backups
from core import events as ev
from core.backups import loaders
from tests.backups_helpers import workspace


def _setup(tmp_path: Path, pg_url: str):
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table items (id int primary key)"))
        conn.execute(sa.text("insert into items select generate_series(1, 50)"))
    engine.dispose()
    ws = workspace(tmp_path, pg_url, "shop")
    backup = backups.create_backup(ws, "shop")
    return ws, backup


def _blocker(pg_url: str):
    """Another session inside a transaction that has written to the table."""
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    conn = engine.connect()
    conn.execute(sa.text("update items set id = id where id = 1"))
    pid = conn.execute(sa.text("select pg_backend_pid()")).scalar()
    return engine, conn, pid


WAYS = pytest.mark.parametrize("in_place", [False, True], ids=["beside", "in-place"])


@WAYS
def test_a_restore_behind_an_open_transaction_names_it_and_gives_up(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    monkeypatch.setattr(loaders, "RESTORE_LOCK_TIMEOUT", 3.0)
    monkeypatch.setattr(loaders, "LOCK_POLL", 0.2)
    ws, backup = _setup(tmp_path, pg_url)
    engine, conn, pid = _blocker(pg_url)
    try:
        plan = backups.plan_restore(ws, backup.id, in_place=in_place)
        outcome = ws.executor.run(
            plan, backups.restore_target(ws, plan), confirmed=True
        )
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()
    assert outcome.status == "failed" and outcome.failed_step == "restore"
    error = str(outcome.error)
    assert "waited 3 s for a lock and gave up" in error
    assert f"pid {pid} (postgres, in a transaction since" in error
    assert "pg_terminate_backend" in error
    logs = [
        e
        for e in ws.journal.events("shop", kinds=("step.log",))
        if "waiting for locks" in e["message"]
    ]
    assert (
        logs and f"waiting for locks held by pid {pid} (postgres" in logs[0]["message"]
    )
    check = sa.create_engine(pg_url)
    with check.connect() as c:  # rolled back: the table is as it was
        assert c.execute(sa.text("select count(*) from items")).scalar() == 50
    check.dispose()
    ws.close()


@WAYS
def test_a_restore_goes_on_once_the_blocking_session_ends(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    monkeypatch.setattr(loaders, "LOCK_POLL", 0.2)
    ws, backup = _setup(tmp_path, pg_url)
    eng = sa.create_engine(pg_url)
    with eng.begin() as c:
        c.execute(sa.text("delete from items where id > 10"))
    eng.dispose()
    engine, conn, pid = _blocker(pg_url)
    told = threading.Event()

    def release(event: ev.Event) -> None:  # the operator reads the log, ends it
        if event.kind == "step.log" and f"pid {pid}" in event.message:
            told.set()
            conn.rollback()

    unsubscribe = ws.bus.subscribe(release)
    try:
        plan = backups.plan_restore(ws, backup.id, in_place=in_place)
        outcome = ws.executor.run(
            plan, backups.restore_target(ws, plan), confirmed=True
        )
    finally:
        unsubscribe()
        conn.close()
        engine.dispose()
    assert told.is_set()
    assert outcome.ok, outcome.error
    check = sa.create_engine(pg_url)
    with check.connect() as c:
        assert c.execute(sa.text("select count(*) from items")).scalar() == 50
    check.dispose()
    ws.close()
