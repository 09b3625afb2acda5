"""Faults: a dump killed, a full disk, a flipped byte, damaged manifests, a restore
killed half-way, and passwords kept out of `ps`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from console.cli import main
from core import backups
from core.backups import pg_beside, tools
from core.backups.create import plan_create
from core.errors import DbrError, Refused
from core.events import STEP_PROGRESS, VERIFY_FAILED
from tests.backups_helpers import (
    load_chinook_sqlite,
    load_pagila,
    load_sakila,
    state_of,
    workspace,
)
from tests.conftest import MYSQL_ADMIN, PG_ADMIN, unique_name


def children(names: tuple[str, ...]) -> list[int]:
    """Our child processes running one of names."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and comm in names:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode()
        )
    except OSError:
        return ""


def folder_files(ws, name: str) -> list[str]:
    folder = ws.settings.targets[name].backup_dir
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- the dump dies or is stopped --------------------------------------------------


def test_a_dump_killed_mid_way_leaves_nothing_listed_and_no_file(
    tmp_path: Path, pg_url: str
) -> None:
    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    killed: list[int] = []

    def kill_pg_dump(done: float, total: object) -> None:
        for pid in children(("pg_dump",)):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with pytest.raises(DbrError) as raised:
        backups.create_backup(ws, "pagila", progress=kill_pg_dump)
    assert killed
    assert "pg_dump" in str(raised.value) and "signal 9" in str(raised.value)
    assert backups.list_backups(ws) == []
    assert folder_files(ws, "pagila") == []
    failed = ws.journal.operations("pagila", kind="backup.create")[0]
    assert failed["status"] == "failed" and "pg_dump" in failed["error"]
    alerts = ws.journal.events("pagila", kinds=("backup.failed",))
    assert alerts and alerts[0]["severity"] == "critical"
    ws.close()


def test_a_cancelled_backup_stops_its_dump_and_keeps_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    cancel = threading.Event()
    ws.bus.subscribe(lambda e: cancel.set() if e.kind == STEP_PROGRESS else None)
    plan = plan_create(ws.target("pagila"))
    outcome = ws.executor.run(plan, ws.target("pagila"), confirmed=True, cancel=cancel)
    assert outcome.status == "cancelled" and "cancelled" in (outcome.error or "")
    # The operator stopped it: an operation.cancelled warning, not a failure alarm.
    said = {e["kind"]: e["severity"] for e in ws.journal.events("pagila")}
    assert said["operation.cancelled"] == "warning"
    assert "backup.failed" not in said and "operation.failed" not in said
    assert children(("pg_dump",)) == []
    assert backups.list_backups(ws) == [] and folder_files(ws, "pagila") == []
    ws.close()


def _blocked_backup(
    tmp_path: Path, pg_url: str, ws, **popen: object
) -> tuple[subprocess.Popen, sa.Connection, Path]:
    """`dbr backups create pagila` in a child process whose pg_dump waits on a
    lock, returned once it has started writing its partial file; the caller
    rolls the blocking connection back to let the dump go on."""
    blocker = sa.create_engine(pg_url).connect()
    blocker.execute(sa.text("lock table actor in access exclusive mode"))
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from console.cli import entry; entry()",
            "--config",
            str(tmp_path / "dbr.toml"),
            "backups",
            "create",
            "pagila",
        ],
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    folder = ws.settings.targets["pagila"].backup_dir
    for _ in range(300):
        if folder.is_dir() and any(
            p.name.startswith(".dbr-partial-") for p in folder.iterdir()
        ):
            return run, blocker, folder
        threading.Event().wait(0.1)
    run.kill()
    blocker.close()
    pytest.fail("the backup never started writing")


def test_partial_files_of_an_interrupted_run_are_cleaned_by_the_next(
    tmp_path: Path, pg_url: str
) -> None:
    """dbr is SIGKILLed while pg_dump waits on a lock; the next run cleans up."""
    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    run, blocker, folder = _blocked_backup(tmp_path, pg_url, ws, start_new_session=True)
    try:
        os.killpg(run.pid, signal.SIGKILL)  # dbr and its pg_dump, as a crash would
        run.wait()
    finally:
        blocker.rollback()
        blocker.close()
    assert any(p.name.startswith(".dbr-partial-") for p in folder.iterdir())
    with pytest.raises(Refused, match="the holding process is gone"):
        backups.create_backup(ws, "pagila")
    backup = backups.create_backup(ws, "pagila", break_lock=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [backup.path.name, backup.manifest_path.name]
    )
    assert [b.id for b in backups.list_backups(ws)] == [backup.id]
    ws.close()


def test_sigterm_stops_a_backup_cleanly_lock_released_nothing_kept(
    tmp_path: Path, pg_url: str
) -> None:
    """A cron job's timeout sends SIGTERM: the next backup needs no --break-lock."""
    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    run, blocker, folder = _blocked_backup(tmp_path, pg_url, ws)
    try:
        run.send_signal(signal.SIGTERM)
    finally:
        blocker.rollback()  # pg_dump goes on, and dbr sees the stop at once
        blocker.close()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    assert "cancelled" in stderr
    assert folder_files(ws, "pagila") == [] and backups.list_backups(ws) == []
    assert children(("pg_dump",)) == []
    stopped = ws.journal.operations("pagila", kind="backup.create")[0]
    assert stopped["status"] == "cancelled" and "cancelled" in stopped["error"]
    backup = backups.create_backup(ws, "pagila")  # no stale lock in the way
    assert [b.id for b in backups.list_backups(ws)] == [backup.id]
    ws.close()


def test_no_matching_pg_dump_stops_before_any_file_is_written(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(tmp_path, pg_url, "db")
    monkeypatch.setattr(tools, "PG_ROOTS", (tmp_path / "no-postgresql",))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DbrError) as raised:
        backups.create_backup(ws, "db")
    assert "no pg_dump for PostgreSQL 15" in str(raised.value)
    assert "postgresql-client-15" in str(raised.value)
    assert not ws.settings.targets["db"].backup_dir.exists()
    ws.close()


def test_the_pg_dump_matching_the_server_is_picked(tmp_path: Path) -> None:
    real = Path("/usr/lib/postgresql/15/bin/pg_dump")
    if not real.exists():
        pytest.skip("pg_dump 15 is not installed here")
    for major in ("14", "15", "17"):
        folder = tmp_path / major / "bin"
        folder.mkdir(parents=True)
        (folder / "pg_dump").symlink_to(real)
    roots = (tmp_path,)
    assert tools.pick_pg_tool("pg_dump", 15, roots).major == 15
    assert tools.pick_pg_tool("pg_dump", 16, roots).major == 17
    with pytest.raises(DbrError, match="no pg_dump for PostgreSQL 18"):
        tools.pick_pg_tool("pg_dump", 18, roots)


# -- the disk fills up ---------------------------------------------------------


def _small_tmpfs(path: Path) -> bool:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_a_full_disk_fails_the_backup_cleanly(tmp_path: Path, pg_url: str) -> None:
    load_pagila(pg_url)
    small = tmp_path / "small"
    if not _small_tmpfs(small):
        _full_disk_by_file_size_limit(tmp_path, pg_url)
        return
    try:
        ws = workspace(tmp_path, pg_url, "pagila", backup_dir=small)
        with pytest.raises(DbrError) as raised:
            backups.create_backup(ws, "pagila")
        assert "No space left on device" in str(raised.value)
        assert list(small.iterdir()) == []
        assert backups.list_backups(ws) == []
        ws.close()
    finally:
        subprocess.run(["umount", str(small)], check=True)


def _full_disk_by_file_size_limit(tmp_path: Path, pg_url: str) -> None:
    """Where no tmpfs can be mounted: a child whose files may not pass 300 KB."""
    workspace(tmp_path, pg_url, "pagila").close()
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
        "from console.cli import main\n"
        f"sys.exit(main(['--config', {str(tmp_path / 'dbr.toml')!r}, 'backups', "
        "'create', 'pagila']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "File too large" in done.stderr
    assert list((tmp_path / "backups" / "pagila").iterdir()) == []


# -- damaged backups and manifests ------------------------------------------------


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_flipped_byte_fails_verify_and_the_restore_is_refused(
    tmp_path: Path, sqlite_url: str
) -> None:
    load_chinook_sqlite(sqlite_url)
    ws = workspace(tmp_path, sqlite_url, "chinook")
    backup = backups.create_backup(ws, "chinook")
    _flip_a_byte(backup.path)

    result = backups.verify_backup(ws, backup.id)
    assert not result.ok
    assert any("sha256" in p or "decompress" in p for p in result.problems)
    recorded = backups.get_backup(ws, backup.id)
    assert recorded.verify_ok is False and not recorded.verified
    assert ws.journal.events("chinook", kinds=(VERIFY_FAILED,))
    with pytest.raises(Refused, match="failed verification"):
        backups.plan_restore(ws, backup.id)
    ws.close()


def test_a_byte_flipped_after_a_good_verify_is_still_caught_before_restore(
    tmp_path: Path, sqlite_url: str
) -> None:
    load_chinook_sqlite(sqlite_url)
    ws = workspace(tmp_path, sqlite_url, "chinook")
    backup = backups.create_backup(ws, "chinook")
    assert backups.verify_backup(ws, backup.id).ok
    _flip_a_byte(backup.path)
    with pytest.raises(Refused) as raised:
        backups.plan_restore(ws, backup.id)
    assert "differs from the manifest" in str(raised.value)
    ws.close()


def test_rescan_reports_damaged_manifests_and_lists_the_rest(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture
) -> None:
    load_chinook_sqlite(sqlite_url)
    ws = workspace(tmp_path, sqlite_url, "chinook")
    made = [backups.create_backup(ws, "chinook", label=str(i)) for i in range(3)]
    made[0].manifest_path.unlink()
    made[1].manifest_path.write_text('{"id": "' + made[1].id + '", "target": ')
    ws.close()

    code = main(["--config", str(tmp_path / "dbr.toml"), "backups", "rescan", "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    result = json.loads(out)
    assert [b["id"] for b in result["backups"]] == [made[2].id]
    problems = {Path(d["path"]).name: d["problem"] for d in result["damaged"]}
    assert problems[made[0].path.name] == "backup file without a manifest"
    assert "cannot be read" in problems[made[1].manifest_path.name]
    assert made[1].manifest_path.name in err

    main(["--config", str(tmp_path / "dbr.toml"), "backups", "list", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert [b["id"] for b in listed] == [made[2].id]


# -- a restore that fails half-way ---------------------------------------------


def _big_table(conn: sa.Connection, dialect: str) -> None:
    """About 12 MB of data that compresses poorly, so the restore takes many reads."""
    if dialect == "mysql":
        conn.execute(
            sa.text(
                "create table zz_bulk (id int primary key, "
                "v varchar(600)) engine=InnoDB"
            )
        )
        conn.execute(
            sa.text(
                "insert into zz_bulk select seq, concat(md5(rand()), md5(rand()), "
                "md5(rand()), md5(rand()), md5(rand()), md5(rand())) "
                "from seq_1_to_60000"
            )
        )
    else:
        conn.execute(
            sa.text(
                "create table zz_bulk as select g as id, md5(random()::text) || "
                "md5(random()::text) || md5(random()::text) || md5(random()::text) || "
                "md5(random()::text) || md5(random()::text) as v "
                "from generate_series(1, 60000) g"
            )
        )


def _kill_client_half_way(ws, names: tuple[str, ...]) -> list[int]:
    killed: list[int] = []

    def on_event(event) -> None:
        data = event.data or {}
        if (
            event.kind == STEP_PROGRESS
            and data.get("step") == "restore"
            and data.get("total")
            and data["done"] >= data["total"] / 2
            and not killed
        ):
            for pid in children(names):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    ws.bus.subscribe(on_event)
    return killed


def test_a_mariadb_restore_killed_half_way_says_how_to_get_back(
    tmp_path: Path, mysql_url: str
) -> None:
    load_sakila(mysql_url)
    ws = workspace(tmp_path, mysql_url, "sakila")
    target = ws.target("sakila")
    with target.engine().begin() as conn:
        _big_table(conn, "mysql")
    backup = backups.create_backup(ws, "sakila")
    with target.engine().begin() as conn:
        conn.execute(sa.text("delete from rental where rental_id > 16000"))
    before = state_of(target)

    plan = backups.plan_restore(ws, backup.id)
    killed = _kill_client_half_way(ws, ("mariadb", "mysql"))
    outcome = ws.executor.run(plan, target, confirmed=True)
    assert killed and outcome.status == "failed"
    assert outcome.failed_step == "restore"
    safety_id = outcome.results["safety_backup_id"]
    assert "part-way" in outcome.report["state"]
    assert (
        f"dbr backups restore {safety_id} --target sakila"
        in outcome.report["how_to_get_back"]
    )
    entry = ws.journal.operation(outcome.operation_id)
    assert (
        entry["result"]["report"]["how_to_get_back"]
        == outcome.report["how_to_get_back"]
    )
    safety = backups.get_backup(ws, safety_id)
    assert safety.pinned and safety.path.is_file()

    # Following the journal's advice brings the database back.
    back = backups.plan_restore(ws, safety_id)
    assert ws.executor.run(back, target, confirmed=True).ok
    assert state_of(target) == before
    ws.close()


@pytest.mark.parametrize("in_place", [False, True], ids=["beside", "in-place"])
def test_a_postgresql_restore_killed_half_way_changes_nothing(
    tmp_path: Path, pg_url: str, in_place: bool
) -> None:
    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    target = ws.target("pagila")
    with target.engine().begin() as conn:
        _big_table(conn, "postgresql")
    backup = backups.create_backup(ws, "pagila")
    with target.engine().begin() as conn:
        conn.execute(sa.text("delete from zz_bulk where id > 1000"))
        conn.execute(sa.text("create table made_later (x int)"))
    target.dispose()
    before = state_of(target)

    plan = backups.plan_restore(ws, backup.id, in_place=in_place)
    killed = _kill_client_half_way(ws, ("pg_restore",))
    outcome = ws.executor.run(plan, target, confirmed=True)
    assert killed and outcome.status == "failed"
    if in_place:
        assert "one transaction, which was rolled back" in outcome.report["state"]
    else:
        assert "separate database, which was dropped" in outcome.report["state"]
    assert outcome.results["safety_backup_id"] in outcome.report["how_to_get_back"]
    assert state_of(target) == before
    assert not _databases_like(pg_beside._base(target.database) + "__dbr_%")
    ws.close()


def _databases_like(pattern: str) -> list[str]:
    admin = sa.create_engine(PG_ADMIN)
    with admin.connect() as conn:
        names = conn.execute(
            sa.text("select datname from pg_database where datname like :p"),
            {"p": pattern},
        ).scalars()
        found = list(names)
    admin.dispose()
    return found


# -- passwords ---------------------------------------------------------------


def _watch_children_for(ws, name: str, tool: tuple[str, ...], secret: str) -> list[str]:
    seen: list[str] = []

    def look(done: float, total: object) -> None:
        seen.extend(cmdline(pid) for pid in children(tool))

    backup = backups.create_backup(ws, name, progress=look)
    assert backup.size
    assert seen, "the dump tool was not seen running"
    assert not [line for line in seen if secret in line]
    return seen


def test_the_postgresql_password_never_reaches_ps(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_pagila(pg_url)
    role, secret = unique_name("dbr_role"), "Pw-" + unique_name("s")
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"create role {role} login password '{secret}'"))
        conn.execute(sa.text(f"grant pg_read_all_data to {role}"))
    try:
        url = sa.engine.make_url(pg_url).set(username=role)
        monkeypatch.setenv("DBR_TEST_PASSWORD", secret)
        ws = workspace(
            tmp_path, url.render_as_string(), "pagila", password_env="DBR_TEST_PASSWORD"
        )
        seen = _watch_children_for(ws, "pagila", ("pg_dump",), secret)
        assert any("pg_dump" in line for line in seen)
        journal_text = json.dumps(ws.journal.operations("pagila"), default=str)
        assert secret not in journal_text
        ws.close()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"drop owned by {role}"))
            conn.execute(sa.text(f"drop role {role}"))
        admin.dispose()


def test_the_mariadb_password_never_reaches_ps(
    tmp_path: Path, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_sakila(mysql_url)
    database = sa.engine.make_url(mysql_url).database
    user, secret = unique_name("dbr_u")[:30], "Pw-" + unique_name("s")
    admin = sa.create_engine(MYSQL_ADMIN)
    with admin.begin() as conn:
        conn.execute(sa.text(f"create user '{user}'@'%' identified by '{secret}'"))
        conn.execute(sa.text(f"grant all on `{database}`.* to '{user}'@'%'"))
        conn.execute(sa.text(f"grant select on mysql.* to '{user}'@'%'"))
    try:
        url = sa.engine.make_url(mysql_url).set(username=user)
        monkeypatch.setenv("DBR_TEST_PASSWORD", secret)
        ws = workspace(
            tmp_path, url.render_as_string(), "sakila", password_env="DBR_TEST_PASSWORD"
        )
        seen = _watch_children_for(ws, "sakila", ("mariadb-dump", "mysqldump"), secret)
        option_files = [
            line.split("--defaults-extra-file=")[1].split()[0]
            for line in seen
            if "--defaults-extra-file=" in line
        ]
        assert option_files and not any(os.path.exists(f) for f in option_files)
        ws.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop user '{user}'@'%'"))
        admin.dispose()


def test_an_sqlite_backup_that_writers_keep_restarting_gives_up(tmp_path: Path) -> None:
    import sqlite3

    from core.backups.dumpers import online_copy

    source = tmp_path / "busy.db"
    with sqlite3.connect(source) as db:
        db.execute("pragma journal_mode=wal")
        db.execute("create table t (x text)")
        db.executemany("insert into t values (?)", [("x" * 500,)] * 40000)
    # Another process commits all the time, as a busy application would.
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sqlite3, sys\n"
                f"db = sqlite3.connect({str(source)!r}, timeout=30)\n"
                "while True:\n"
                "    db.execute(\"insert into t values ('y')\"); db.commit()\n"
            ),
        ]
    )
    try:
        with sqlite3.connect(source) as db:
            while db.execute("select count(*) from t").fetchone()[0] <= 40000:
                threading.Event().wait(0.05)

        # A page every 2 ms or slower: a whole copy would need seconds without a
        # commit, which this writer never allows, however busy the machine is.
        def slow_step() -> bool:
            time.sleep(0.002)
            return False

        with pytest.raises(DbrError, match="stalled"):
            online_copy(
                source,
                tmp_path / "copy.db",
                pages=1,
                stall_timeout=1.0,
                stop=slow_step,
            )
    finally:
        writer.kill()
        writer.wait()


def test_a_restore_needing_a_missing_definer_is_refused_before_anything_runs(
    tmp_path: Path, mysql_url: str
) -> None:
    ws = workspace(tmp_path, mysql_url, "db")
    target = ws.target("db")
    ghost = unique_name("ghost")[:20]
    with target.engine().begin() as conn:
        conn.execute(sa.text("create table t (x int)"))
        conn.execute(
            sa.text(f"create definer = '{ghost}'@'%' view v as select x from t")
        )
    backup = backups.create_backup(ws, "db")
    assert f"{ghost}@%" in backup.manifest["requires"]["definers"]
    with pytest.raises(Refused) as raised:
        backups.plan_restore(ws, backup.id)
    assert f"DEFINER '{ghost}@%'" in str(raised.value)
    assert ws.journal.operations("db", kind="backup.restore") == []
    ws.close()


def test_a_deep_verify_that_finds_other_row_counts_blocks_the_restore(
    tmp_path: Path, sqlite_url: str
) -> None:
    load_chinook_sqlite(sqlite_url)
    ws = workspace(tmp_path, sqlite_url, "chinook")
    backup = backups.create_backup(ws, "chinook")
    manifest = json.loads(backup.manifest_path.read_text())
    manifest["tables"]["Track"] += 1  # the manifest no longer matches the dump
    backup.manifest_path.write_text(json.dumps(manifest))
    backups.rescan(ws)

    result = backups.verify_backup(ws, backup.id, deep=True)
    assert not result.ok
    assert "Track: 3503 rows, manifest: 3504" in "; ".join(result.problems)
    assert backups.get_backup(ws, backup.id).deep_verify_ok is False
    with pytest.raises(Refused, match="failed"):
        backups.plan_restore(ws, backup.id)
    ws.close()


@pytest.mark.parametrize("beside", [True, False], ids=["beside", "in-place"])
def test_postgresql_restore_takes_effect_only_when_counts_match_the_manifest(
    tmp_path: Path, pg_url: str, beside: bool
) -> None:
    from core.backups import loaders

    load_pagila(pg_url)
    ws = workspace(tmp_path, pg_url, "pagila")
    target = ws.target("pagila")
    backup = backups.create_backup(ws, "pagila")
    with target.engine().begin() as conn:
        conn.execute(sa.text("create table made_later (x int)"))
        conn.execute(sa.text("delete from film_actor where actor_id < 50"))
    target.dispose()
    before = state_of(target)
    backup.manifest["tables"]["actor"] += 1  # as if rows had gone missing
    with pytest.raises(DbrError) as raised:
        loaders.load(target, backup, beside=beside)
    if beside:
        assert "restored database was dropped and pagila left as it was" in str(
            raised.value
        )
    else:
        assert "rolled back" in str(raised.value)
    assert "actor: 200 rows, manifest: 201" in str(raised.value)
    assert state_of(target) == before
    assert not _databases_like(pg_beside._base(target.database) + "__dbr_%")
    ws.close()
