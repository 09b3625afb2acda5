"""A PostgreSQL restore beside the database, swapped in by renaming (real server):
what the database carries besides its tables survives the swap, connected sessions
are named first and ended at the swap, a role that cannot swap restores in place
and the plan says why, and what an interrupted restore left is cleared."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core import backups
from core.backups import pg_beside
from tests.backups_helpers import workspace
from tests.conftest import PG_ADMIN, unique_name


def _admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


def _facts(database: str) -> dict:
    """What a swap must carry over, as the catalog shows it."""
    with _admin().connect() as conn:
        row = conn.execute(
            sa.text(
                "select d.oid, pg_get_userbyid(d.datdba), d.datconnlimit, "
                "shobj_description(d.oid, 'pg_database'), "
                "(select array_agg(a::text order by a::text) "
                " from unnest(d.datacl) a), "
                "(select array_agg(c order by c) from pg_db_role_setting s, "
                " unnest(s.setconfig) c where s.setdatabase = d.oid) "
                "from pg_database d where d.datname = :n"
            ),
            {"n": database},
        ).one()
    oid, *rest = row
    return {"oid": oid, "carried": rest}


def _leftovers(database: str) -> list[str]:
    with _admin().connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "select datname from pg_database where position(:p in datname) = 1"
                ),
                {"p": pg_beside._base(database) + "__dbr_"},
            ).scalars()
        )


def _items(tmp_path: Path, url: str, name: str = "shop"):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table items (id int primary key, label text)"))
        conn.execute(
            sa.text(
                "insert into items select g, 'item ' || g "
                "from generate_series(1, 300) g"
            )
        )
    engine.dispose()
    ws = workspace(tmp_path, url, name)
    return ws, backups.create_backup(ws, name)


def _damage_then_restore_beside(ws, backup, url: str, damage: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(damage))
    engine.dispose()
    plan = backups.plan_restore(ws, backup.id)
    assert plan.summary["method"].startswith("beside")
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    assert outcome.ok, outcome.error


def _count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select count(*) from items")).scalar_one()
    engine.dispose()
    return rows


def test_privileges_settings_and_comment_of_the_database_survive_the_swap(
    tmp_path: Path, pg_url: str
) -> None:
    database = sa.engine.make_url(pg_url).database
    role = unique_name("dbr_reader")
    with _admin().connect() as conn:
        conn.execute(sa.text(f'create role "{role}" login'))
        for statement in (
            "revoke connect, temporary on database {db} from public",
            'grant connect on database {db} to "{role}"',
            "alter database {db} set search_path = \"$user\", public, 'odd, name'",
            "alter database {db} set work_mem = '7MB'",
            f"alter role \"{role}\" in database {{db}} set statement_timeout = '5s'",
            "comment on database {db} is 'the shop''s data'",
            "alter database {db} connection limit 40",
        ):
            conn.execute(sa.text(statement.format(db=f'"{database}"', role=role)))
    try:
        ws, backup = _items(tmp_path, pg_url)
        before = _facts(database)
        _damage_then_restore_beside(
            ws, backup, pg_url, "delete from items where id > 100"
        )
        after = _facts(database)
        assert after["oid"] != before["oid"]  # another database now has the name
        assert after["carried"] == before["carried"]
        assert _count(pg_url) == 300
        assert not _leftovers(database)
        ws.close()
    finally:
        with _admin().connect() as conn:
            conn.execute(sa.text(f'drop owned by "{role}"'))
            conn.execute(sa.text(f'revoke all on database "{database}" from "{role}"'))
            conn.execute(
                sa.text(f'alter role "{role}" in database "{database}" reset all')
            )
            conn.execute(sa.text(f'drop role "{role}"'))


def test_connected_sessions_are_named_in_the_plan_and_ended_at_the_swap(
    tmp_path: Path, pg_url: str
) -> None:
    ws, backup = _items(tmp_path, pg_url)
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    idle = engine.connect()
    pid = idle.execute(sa.text("select pg_backend_pid()")).scalar_one()
    idle.commit()
    try:
        plan = backups.plan_restore(ws, backup.id)
        named = [r for r in plan.risks if r.kind == "sessions_ended"]
        assert named and f"pid {pid} (postgres, idle" in named[0].message
        outcome = ws.executor.run(
            plan, backups.restore_target(ws, plan), confirmed=True
        )
        assert outcome.ok, outcome.error
        with pytest.raises(sa.exc.DBAPIError):
            idle.execute(sa.text("select 1"))
    finally:
        idle.invalidate()
        engine.dispose()
    assert _count(pg_url) == 300
    ws.close()


def test_a_role_that_cannot_create_databases_restores_in_place_and_is_told_why(
    tmp_path: Path, pg_url: str
) -> None:
    url = sa.engine.make_url(pg_url)
    role = unique_name("dbr_owner")
    with _admin().connect() as conn:
        conn.execute(sa.text(f'create role "{role}" login'))
        conn.execute(sa.text(f'alter database "{url.database}" owner to "{role}"'))
    as_owner = url.set(username=role).render_as_string(hide_password=False)
    try:
        ws, backup = _items(tmp_path, as_owner)
        plan = backups.plan_restore(ws, backup.id)
        assert plan.summary["method"].startswith("in place")
        assert (
            "neither is a superuser nor owns the database with CREATEDB"
            in (plan.summary["method"])
        )
        assert ws.executor.run(
            plan, backups.restore_target(ws, plan), confirmed=True
        ).ok

        # Given CREATEDB, the owner restores beside and swaps, as a superuser would,
        # under a connection limit its own loaders must not trip over; but not
        # while a superuser's session, which it cannot end, is connected.
        with _admin().connect() as conn:
            conn.execute(sa.text(f'alter role "{role}" createdb'))
            conn.execute(sa.text(f'alter database "{url.database}" connection limit 2'))
        other = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
        with other.connect() as idle:
            pid = idle.execute(sa.text("select pg_backend_pid()")).scalar_one()
            plan = backups.plan_restore(ws, backup.id)
            assert plan.summary["method"].startswith("in place")
            assert (
                f"cannot end (the swap needs them gone): pid {pid} (postgres)"
                in (plan.summary["method"])
            )
        other.dispose()
        _damage_then_restore_beside(ws, backup, as_owner, "delete from items")
        assert _count(pg_url) == 300
        assert _facts(url.database)["carried"][:2] == [role, 2]  # owner, limit
        ws.close()
    finally:
        with _admin().connect() as conn:
            conn.execute(sa.text(f'alter database "{url.database}" owner to postgres'))
        inside = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with inside.connect() as conn:  # its table lives in the test's database
            conn.execute(sa.text(f'drop owned by "{role}" cascade'))
        inside.dispose()
        with _admin().connect() as conn:
            conn.execute(sa.text(f'drop role "{role}"'))


def test_what_an_interrupted_restore_left_is_dropped_by_the_next(
    tmp_path: Path, pg_url: str
) -> None:
    database = sa.engine.make_url(pg_url).database
    ws, backup = _items(tmp_path, pg_url)
    left = f"{pg_beside._base(database)}__dbr_new_0123456789ab"
    with _admin().connect() as conn:
        conn.execute(sa.text(f'create database "{left}"'))
    try:
        assert _leftovers(database)
        plan = backups.plan_restore(ws, backup.id)
        outcome = ws.executor.run(
            plan, backups.restore_target(ws, plan), confirmed=True
        )
        assert outcome.ok
        assert not _leftovers(database)
    finally:
        _drop_quietly(left)
        ws.close()


def _drop_quietly(database: str) -> None:
    with _admin().connect() as conn:  # whatever the test left, gone
        conn.execute(sa.text(f'drop database if exists "{database}" with (force)'))


def test_a_schema_the_backup_lacks_keeps_the_restore_in_place(
    tmp_path: Path, pg_url: str
) -> None:
    ws, backup = _items(tmp_path, pg_url)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create schema reports"))
        conn.execute(sa.text("create table reports.daily (day date)"))
    engine.dispose()
    target = ws.target("shop")
    assert pg_beside.blockers(target, backup) == [
        "schemas outside the backup would be lost: reports"
    ]
    plan = backups.plan_restore(ws, backup.id)
    assert plan.summary["method"].startswith("in place")
    assert ws.executor.run(plan, target, confirmed=True).ok
    with target.engine().connect() as conn:  # left as it was
        assert conn.execute(sa.text("select count(*) from reports.daily")).scalar() == 0
    ws.close()


def _when_loading(ws, action, ready) -> list:
    """Run action in a thread once the restore starts loading, and hold the
    restore there until ready() is true; returns [thread, action's outcome]."""
    import threading
    import time

    from core import events as ev

    seen: list = []

    def on_event(event: ev.Event) -> None:
        if event.kind == "step.log" and "loading table data" in event.message:

            def run() -> None:
                try:
                    seen.append(action())
                except Exception as exc:  # what the other session was told
                    seen.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            seen.append(thread)
            deadline = time.monotonic() + 20
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ready(), "the other session never got going"

    ws.bus.subscribe(on_event)
    return seen


def _scalar(url: str, sql: str):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        value = conn.execute(sa.text(sql)).scalar()
    engine.dispose()
    return value


def test_a_write_that_waited_for_the_restore_fails_and_is_never_lost(
    tmp_path: Path, pg_url: str
) -> None:
    ws, backup = _items(tmp_path, pg_url)
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)

    def write() -> str:
        with engine.begin() as conn:
            conn.execute(sa.text("insert into items values (1000, 'late')"))
        return "committed"

    def waiting() -> bool:  # the insert queues behind the restore's lock
        return bool(
            _scalar(
                pg_url,
                "select count(*) from pg_stat_activity where datname = "
                "current_database() and wait_event_type = 'Lock'",
            )
        )

    seen = _when_loading(ws, write, waiting)
    plan = backups.plan_restore(ws, backup.id)
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    assert outcome.ok, outcome.error
    seen[0].join(timeout=30)
    engine.dispose()
    # The writer waited behind the restore's lock and was ended at the swap: it
    # was told its write failed, and the row is not there.
    assert isinstance(seen[1], sa.exc.DBAPIError), seen[1]
    assert _count(pg_url) == 300
    ws.close()


def test_a_table_made_during_the_restore_stops_the_swap(
    tmp_path: Path, pg_url: str
) -> None:
    ws, backup = _items(tmp_path, pg_url)
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from items where id > 10"))

    def make() -> str:
        with engine.begin() as conn:
            conn.execute(sa.text("create table made_meanwhile (x int)"))
        return "made"

    seen = _when_loading(
        ws, make, lambda: _scalar(pg_url, "select to_regclass('made_meanwhile')")
    )
    plan = backups.plan_restore(ws, backup.id)
    outcome = ws.executor.run(plan, backups.restore_target(ws, plan), confirmed=True)
    seen[0].join(timeout=30)
    engine.dispose()
    assert seen[1] == "made"
    assert outcome.status == "failed"
    assert "made_meanwhile were created in" in str(outcome.error)
    assert "nothing was changed" in str(outcome.error)
    assert _count(pg_url) == 10  # as it was: the restore did not take effect
    check = sa.create_engine(pg_url)
    with check.connect() as conn:
        assert conn.execute(sa.text("select to_regclass('made_meanwhile')")).scalar()
    check.dispose()
    assert not _leftovers(sa.engine.make_url(pg_url).database)
    ws.close()


def test_a_database_left_closed_by_a_stopped_swap_is_opened_by_the_next_restore(
    tmp_path: Path, pg_url: str
) -> None:
    from core.errors import DbrError

    database = sa.engine.make_url(pg_url).database
    ws, backup = _items(tmp_path, pg_url)
    target = ws.target("shop")
    target.dispose()
    with _admin().connect() as conn:  # as an operator's own choice: kept
        conn.execute(sa.text(f'alter database "{database}" allow_connections false'))
    with pytest.raises(DbrError, match="does not accept connections"):
        backups.plan_restore(ws, backup.id)

    # As a restore killed mid-swap leaves it: closed, its new database beside it.
    left = f"{pg_beside._base(database)}__dbr_new_0123456789ab"
    with _admin().connect() as conn:
        conn.execute(sa.text(f'create database "{left}"'))
    try:
        plan = backups.plan_restore(ws, backup.id)
        assert "opened it again" in plan.summary["reopened"]
        assert _facts(database)["oid"]  # reachable again
        assert ws.executor.run(plan, target, confirmed=True).ok
        assert _count(pg_url) == 300 and not _leftovers(database)
    finally:
        _drop_quietly(left)
        ws.close()
