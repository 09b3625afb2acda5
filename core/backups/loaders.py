"""Loading a backup into a database: the zstd stream piped into the engine's tool.

PostgreSQL: pg_restore's SQL run by psql in one transaction that commits only after
the checksum and row counts are right, so a failure leaves the database as it was.
MySQL/MariaDB: the mariadb (mysql) client; DDL commits as it goes there, so a
failure can leave a half-restored state. SQLite: the online backup API from a
decompressed copy, which replaces the whole database atomically. A client that exits
0 after printing errors has failed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from core.backups import pg_beside, stream, tools
from core.backups.catalog import Backup
from core.backups.inspect import compare_counts, literal, qualified, quote, table_names
from core.backups.stream import Progress, Stop, Tool
from core.errors import Cancelled, DbrError
from core.state import new_id
from core.targets import Target

log = logging.getLogger(__name__)

RESTORE_SETTINGS = "-c maintenance_work_mem=512MB -c work_mem=64MB"
# Restoring beside, the loaders already keep every core busy: index builds and
# foreign key checks gain nothing from helper processes, and no commit before
# the swap needs to wait for the disk (the swap's own commit flushes everything
# written before it).
PARALLEL_SETTINGS = (
    "-c max_parallel_maintenance_workers=0 -c max_parallel_workers_per_gather=0 "
    "-c synchronous_commit=off"
)
# How long the restore's session waits for a lock (another session's open
# transaction on a table it replaces) before it gives up and rolls back.
RESTORE_LOCK_TIMEOUT = 30.0  # seconds
LOCK_POLL = 2.0  # seconds between looks at who blocks the restore
_BLOCKERS = """
select b.pid, b.usename, b.state, b.xact_start, b.application_name
from pg_stat_activity w
cross join lateral unnest(pg_blocking_pids(w.pid)) as x(pid)
join pg_stat_activity b on b.pid = x.pid
where w.application_name = :app
order by b.pid
"""
Log = pg_beside.Log


def load(
    target: Target,
    backup: Backup,
    *,
    progress: Progress | None = None,
    stop: Stop | None = None,
    log: Log | None = None,
    note: Log | None = None,
    beside: bool | None = None,
) -> dict[str, int] | None:
    """Restore backup into target; raises DbrError unless every tool succeeded.

    Returns the row counts checked before the restore took effect (PostgreSQL),
    else None: then the caller counts afterwards. log hears, while a PostgreSQL
    restore waits for a lock, which sessions hold it; note hears how a restore
    beside the database is going. beside picks the PostgreSQL
    way (pg_beside, or in place in one transaction); None: beside where it can.
    """
    if backup.dialect != target.dialect:
        raise DbrError(
            f"backup {backup.id} is a {backup.dialect} backup; "
            f"{target.name} is {target.dialect}",
            hint="restore it into a database of the same kind",
        )
    if backup.dialect == "postgresql":
        if beside is None:
            beside = not pg_beside.blockers(target, backup)
        if beside:
            return pg_beside.load(
                target,
                backup,
                fence=lambda: _fence(target, log),
                settings=RESTORE_SETTINGS + " " + PARALLEL_SETTINGS,
                progress=progress,
                stop=stop,
                log=note,
            )
    digest = hashlib.sha256()
    chunks = stream.decompressed(
        backup.path, progress=progress, stop=stop, digest=digest
    )
    if backup.dialect == "postgresql":
        return _load_postgresql(target, backup, chunks, digest, log)
    if backup.dialect == "mysql":
        _load_mysql(target, chunks)
    else:
        _load_sqlite(target, chunks)
    _check_digest(backup, digest)
    return None


def _load_postgresql(
    target: Target, backup: Backup, chunks: object, digest: Any, log: Log | None = None
) -> dict[str, int]:
    """pg_restore writes the dump's SQL; psql runs it all in one transaction.

    psql first drops the backup's schemas (pg_restore --clean cannot drop what
    partitions inherit), so objects made since the backup go too. Before its
    COMMIT, psql counts the rows it loaded and waits on a FIFO; dbr opens it only
    when pg_restore succeeded, the file's SHA-256 matched and the counts equal the
    manifest's. On anything else psql is killed, which rolls everything back.
    Returns the row counts, read inside the restore's own transaction.
    """
    reader, server = pg_beside.reader_for(target, backup)
    psql = tools.pick_pg_tool("psql", server)
    with target.client_call() as call, tempfile.TemporaryDirectory() as private:
        # Index builds and foreign-key checks dominate a restore; give this one
        # session the memory PostgreSQL's own docs advise for restores.
        # A lock_timeout turns a silent wait behind another session's open
        # transaction into an error that names it (see _LockWatch).
        call.env["PGOPTIONS"] = " ".join(
            filter(
                None,
                (
                    call.env.get("PGOPTIONS"),
                    RESTORE_SETTINGS,
                    f"-c lock_timeout={int(RESTORE_LOCK_TIMEOUT * 1000)}",
                ),
            )
        )
        app = f"dbr restore {new_id()}"
        call.env["PGAPPNAME"] = app
        watch = _LockWatch(target, app, log)
        gate, counted = Path(private) / "commit", Path(private) / "counts"
        os.mkfifo(gate, 0o600)
        restore = Tool(
            "pg_restore",
            [reader.path, "--file=-"],
            call.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        runner = Tool(
            "psql",
            [
                psql.path,
                *call.args,
                "-X",
                "-q",
                "-A",
                "-t",
                "-w",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-c",
                _clean_sql(backup, server),
                "-f",
                "-",
                "-c",
                f"\\o {counted}",
                "-c",
                _count_sql(backup),
                "-c",
                "\\o",
                "-f",
                str(gate),
            ],
            call.env,
            stdin=restore.process.stdout,
            stdout=subprocess.DEVNULL,
        )
        assert restore.process.stdout is not None
        restore.process.stdout.close()  # psql alone reads it now
        watch.start()
        try:
            try:
                stream.feed(restore, chunks)  # type: ignore[arg-type]
                restore.finish()
                _check_digest(backup, digest)
                held = _reach_gate(gate, runner)
                if held is None:
                    runner.finish()  # psql stopped before the gate: say why
                    raise DbrError("psql stopped before the restore could commit")
                counts = _read_counts(counted)
                differences = compare_counts(backup.tables, counts)
                if differences:
                    raise DbrError(
                        "the restored row counts differ from the "
                        "manifest's, so the restore was rolled back",
                        cause="; ".join(differences[:10]),
                    )
            except BaseException as exc:
                runner.kill()  # before its COMMIT: nothing is committed
                if isinstance(exc, Exception) and "lock timeout" in runner.stderr():
                    raise _lock_timeout(target, watch.seen) from None
                raise
            os.close(held)  # psql reads an empty FIFO and commits
            runner.finish()
            return counts
        finally:
            watch.stop()
            restore.close()
            runner.close()


class _Held:
    """A connection holding locks, and the engine made for it alone; what the
    database held when it took them, to see what was made since."""

    def __init__(self, engine: sa.Engine, conn: sa.Connection) -> None:
        self.engine, self.conn = engine, conn
        self.pid = conn.execute(sa.text("select pg_backend_pid()")).scalar_one()
        self.tables, self.schemas = self._now()

    def _now(self) -> tuple[set[str], set[str]]:
        return (
            set(table_names(self.conn, "postgresql")),
            set(pg_beside.user_schemas(self.conn)),
        )

    def made_since(self) -> list[str]:
        """Tables and schemas created since the locks were taken."""
        tables, schemas = self._now()
        return sorted(tables - self.tables) + [
            f"schema {name}" for name in sorted(schemas - self.schemas)
        ]

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.engine.dispose()


def _fence(target: Target, log: Log | None) -> _Held:
    """Lock every table of target against writes (reads go on) until the swap,
    so that no write made during the restore is lost; names who it waits for."""
    app = f"dbr restore {new_id()}"
    engine = sa.create_engine(
        target.url,
        poolclass=NullPool,
        connect_args={"application_name": app, "connect_timeout": 10},
    )
    conn = engine.connect()
    watch = _LockWatch(target, app, log)
    watch.start()
    try:
        conn.exec_driver_sql(f"set lock_timeout = {int(RESTORE_LOCK_TIMEOUT * 1000)}")
        tables = [
            qualified("postgresql", name) for name in table_names(conn, "postgresql")
        ]
        if tables:
            conn.exec_driver_sql(f"lock table {', '.join(tables)} in exclusive mode")
    except BaseException as exc:
        conn.close()
        engine.dispose()
        if isinstance(exc, sa.exc.DBAPIError) and "lock timeout" in str(exc.orig):
            raise _lock_timeout(target, watch.seen) from None
        raise
    finally:
        watch.stop()
    return _Held(engine, conn)


class _LockWatch:
    """From a second connection, names the sessions the restore waits behind."""

    def __init__(self, target: Target, app: str, log: Log | None) -> None:
        self.target, self.app, self.log = target, app, log
        self.seen: dict[int, str] = {}  # pid -> "pid N (user, ...)"
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, daemon=True, name="dbr-restore-locks"
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=LOCK_POLL + 10)

    def _run(self) -> None:
        while not self._done.wait(LOCK_POLL):
            try:
                with self.target.engine().connect() as conn:
                    rows = conn.execute(sa.text(_BLOCKERS), {"app": self.app}).all()
            except sa.exc.DBAPIError:  # the restore itself reports what matters
                log.debug("cannot read pg_stat_activity", exc_info=True)
                continue
            for pid, user, state, since, application in rows:
                if pid in self.seen:
                    continue
                when = (
                    f"in a transaction since {since.astimezone(UTC):%H:%M:%S} UTC"
                    if since
                    else state or "idle"
                )
                who = f"pid {pid} ({user}, {when}"
                who += f", {application})" if application else ")"
                self.seen[pid] = who
                if self.log is not None:
                    self.log(
                        f"waiting for locks held by {who}; the restore gives "
                        f"up after {RESTORE_LOCK_TIMEOUT:g} s"
                    )


def _lock_timeout(target: Target, seen: dict[int, str]) -> DbrError:
    holders = (
        "; ".join(seen.values())
        or "another session (it ended before dbr could name it)"
    )
    return DbrError(
        f"the restore of {target.name} waited {RESTORE_LOCK_TIMEOUT:g} s for a "
        "lock and gave up; nothing was changed",
        cause=f"locks held by {holders}",
        hint="let that session commit or roll back (or end it with "
        "pg_terminate_backend(PID)), then restore again",
    )


def _count_sql(backup: Backup) -> str:
    if not backup.tables:
        return "select '{}'"
    # The dump's SQL empties search_path, so every name is schema-qualified.
    rows = ", ".join(
        f"({literal(table)}, (select count(*) from "
        f"{qualified('postgresql', table if '.' in table else 'public.' + table)}))"
        for table in sorted(backup.tables)
    )
    return f"select json_object_agg(t, n) from (values {rows}) as c(t, n)"


def _read_counts(path: Path) -> dict[str, int]:
    text = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    try:
        counts = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise DbrError(
            "cannot read the row counts psql wrote", cause=text[:200]
        ) from None
    return {str(k): int(v) for k, v in counts.items()}


def _check_digest(backup: Backup, digest: Any) -> None:
    if digest.hexdigest() != backup.sha256:
        raise DbrError(
            f"backup {backup.id} changed while it was restored",
            cause="its SHA-256 no longer matches the manifest",
            hint=f"verify it with `dbr backups verify {backup.id}`",
        )


def _clean_sql(backup: Backup, server_major: int) -> str:
    schemas = pg_beside.replaced_schemas(backup)
    statements = ["set client_min_messages = warning"]
    for schema in sorted(schemas):
        statements.append(
            f"drop schema if exists {quote('postgresql', schema)} cascade"
        )
    if "public" in schemas:
        # As initdb makes it; the dump then applies its own owner and grants.
        if server_major >= 15:
            statements += [
                "create schema public authorization pg_database_owner",
                "grant usage on schema public to public",
            ]
        else:
            statements += [
                "create schema public",
                "grant all on schema public to public",
            ]
    return ";\n".join(statements) + ";"


def _reach_gate(gate: Path, runner: Tool) -> int | None:
    """Wait until psql waits on the FIFO; return our end of it, or None if psql
    stopped before. Closing that end lets psql go on to its COMMIT."""
    while True:
        try:
            return os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        if runner.process.poll() is not None:
            return None
        time.sleep(0.02)


def _load_mysql(target: Target, chunks: object) -> None:
    tool = tools.mysql_tool("client")
    with target.client_call() as call:
        args = [
            tool.path,
            *call.args,
            "--binary-mode",
            "--batch",
            "--default-character-set=utf8mb4",
            # The client's own limit (16 MiB); the server's is checked before.
            "--max-allowed-packet=1073741824",
            "--",
            target.database,
        ]
        _pipe(Path(tool.path).name, args, call.env, chunks)


def _pipe(name: str, args: list[str], env: dict[str, str], chunks: object) -> None:
    client = Tool(name, args, env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        try:
            stream.feed(client, chunks)  # type: ignore[arg-type]
        except BaseException:
            client.kill()  # never leave a half-fed client running
            raise
        client.finish()
    finally:
        client.close()


def _load_sqlite(target: Target, chunks: object) -> None:
    path = target.sqlite_path
    copy = path.parent / f".dbr-partial-{os.getpid()}-{new_id()}.restore"
    target.dispose()  # our own pooled connections must not hold the file
    try:
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:  # type: ignore[attr-defined]
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        source = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        destination = sqlite3.connect(path, timeout=30)
        try:
            if source.execute("pragma quick_check").fetchone()[0] != "ok":
                raise DbrError(
                    "the decompressed SQLite backup is not sound",
                    hint="verify the backup",
                )
            # One step: the destination is replaced in a single write transaction.
            source.backup(destination, pages=-1)
        except sqlite3.Error as exc:
            raise DbrError(f"cannot restore into {path}", cause=str(exc)) from None
        finally:
            destination.close()
            source.close()
    except Cancelled:
        raise
    except OSError as exc:
        raise DbrError(
            f"cannot restore into {path}", cause=exc.strerror or str(exc)
        ) from None
    finally:
        copy.unlink(missing_ok=True)
