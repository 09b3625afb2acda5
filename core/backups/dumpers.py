"""One dumper per dialect: each writes a compressed dump and returns manifest facts.

PostgreSQL: pg_dump custom format from an exported snapshot, so the row counts read
in that snapshot describe exactly what was dumped. MySQL/MariaDB: one consistent
snapshot (--single-transaction) with routines, triggers and events, binary-safe.
SQLite: the online backup API (WAL content included), never a file copy.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from core.backups import inspect, stream, tools
from core.backups.stream import Progress, Stop, Tool, Written
from core.errors import Cancelled, DbrError
from core.targets import Target

SQLITE_PAGES_PER_STEP = 1024
SQLITE_STALL_TIMEOUT = 60.0  # seconds without progress while writers restart it


@dataclass
class Dumped:
    """What a dumper learnt while dumping, for the manifest."""

    written: Written
    server_version: str
    client_version: str
    tables: dict[str, int]
    alembic_heads: list[str]
    requires: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    restore_hints: dict[str, Any] = field(default_factory=dict)


class PgDataBlocks:
    """The starts of table data in a pg_dump custom-format stream written with
    --compress=0, where each frame then holds one table's rows.

    A block closes with a zero length (five zero bytes); the next opens with
    its type (1 for a table's rows, 3 for large objects) and dump id (a sign
    byte, then four bytes little-endian). Row text never holds a zero byte, so
    past the table of contents five zeros then 1, 0 start a table's block; a
    look-alike in the table of contents names no table, and a restore ignores
    it. Large objects come after every table and their bytes can hold anything:
    cutting ends where they begin.
    """

    PATTERN = b"\x00" * 5
    SIZE = len(PATTERN) + 6
    CUT = 5
    LIMIT = 20_000
    TABLE, LARGE_OBJECTS = 1, 3

    def __init__(self) -> None:
        self.ended = False

    def label(self, match: bytes) -> int | None:
        kind, sign = match[5], match[6]
        if self.ended or sign != 0:
            return None
        if kind == self.LARGE_OBJECTS:
            self.ended = True
        return int.from_bytes(match[7:], "little") if kind == self.TABLE else None


def pg_server_major(target: Target) -> tuple[int, str]:
    with target.engine().connect() as conn:
        number = int(conn.execute(sa.text("show server_version_num")).scalar_one())
        text = conn.execute(sa.text("show server_version")).scalar_one()
    return number // 10000, text


def prepare(target: Target) -> Any:
    """Everything checked before a file is written; returns what dump() needs."""
    if target.dialect == "postgresql":
        major, version = pg_server_major(target)
        return tools.pick_pg_tool("pg_dump", major), version
    if target.dialect == "mysql":
        return tools.mysql_tool("dump"), target.server_version()
    path = target.sqlite_path
    if not path.is_file():
        raise DbrError(
            f"SQLite database {path} does not exist",
            hint="check the target's url in dbr.toml",
        )
    return None, sqlite3.sqlite_version


def dump(
    target: Target,
    prepared: Any,
    out: BinaryIO,
    work: Path,
    *,
    progress: Progress | None,
    stop: Stop | None,
) -> Dumped:
    """Write target's compressed dump to out; work is a folder for a raw SQLite copy."""
    dumper = {
        "postgresql": _dump_postgresql,
        "mysql": _dump_mysql,
        "sqlite": _dump_sqlite,
    }[target.dialect]
    return dumper(target, prepared, out, work, progress, stop)


def _dump_postgresql(
    target: Target,
    prepared: Any,
    out: BinaryIO,
    work: Path,
    progress: Progress | None,
    stop: Stop | None,
) -> Dumped:
    tool, server_version = prepared
    engine = target.engine().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )
    with engine.connect() as conn:
        snapshot = conn.execute(sa.text("select pg_export_snapshot()")).scalar_one()
        # One process counts beside pg_dump: parallel workers would only take
        # the cores pg_dump's own server process needs.
        conn.execute(sa.text("set local max_parallel_workers_per_gather = 0"))
        with target.client_call() as call:
            # -Z0: pg_dump stays fast and zstd, cheaper and better, compresses.
            args = [
                tool.path,
                *call.args,
                "--format=custom",
                "--compress=0",
                f"--snapshot={snapshot}",
                "--no-password",
            ]
            abort = threading.Event()

            def halted() -> bool:
                return abort.is_set() or (stop is not None and stop())

            # The dump streams in a thread while this connection, in the very
            # snapshot pg_dump reads, counts the rows it is dumping.
            with ThreadPoolExecutor(1, thread_name_prefix="dbr-dump") as pool:
                dumping = pool.submit(
                    _run_dump,
                    "pg_dump",
                    args,
                    call.env,
                    out,
                    progress,
                    halted,
                    PgDataBlocks(),
                )
                try:
                    every = inspect.row_counts(conn, "postgresql", partitions=True)
                    inside = inspect.pg_partition_names(conn)
                    tables = {t: n for t, n in every.items() if t not in inside}
                    heads = inspect.alembic_heads(conn, "postgresql")
                    requires = inspect.requirements(conn, "postgresql")
                    hints = inspect.pg_restore_hints(conn, every)
                except BaseException:
                    abort.set()
                    with suppress(Exception):
                        dumping.result()
                    raise
                written, warnings = dumping.result()
    return Dumped(
        written,
        server_version,
        tool.version,
        tables,
        heads,
        requires,
        warnings=warnings,
        restore_hints={
            "bytes_and_rows_by_oid": hints,
            "frames_by_dump_id": written.frames,
        },
    )


def _dump_mysql(
    target: Target,
    prepared: Any,
    out: BinaryIO,
    work: Path,
    progress: Progress | None,
    stop: Stop | None,
) -> Dumped:
    tool, server_version = prepared
    with target.engine().connect() as conn:
        conn.execute(sa.text("set session transaction isolation level repeatable read"))
        conn.execute(sa.text("start transaction with consistent snapshot"))
        tables = inspect.row_counts(conn, "mysql")
        heads = inspect.alembic_heads(conn, "mysql")
        requires = inspect.requirements(conn, "mysql")
        odd = inspect.non_transactional_tables(conn)
        conn.execute(sa.text("commit"))
    notes = [
        f"table {name} uses the {engine} engine, which --single-transaction "
        "cannot snapshot: its rows may be from a slightly different moment"
        for name, engine in sorted(odd.items())
    ]
    with target.client_call() as call:
        # The option file must come first: the client reads it only there.
        args = [
            tool.path,
            *call.args,
            "--single-transaction",
            "--quick",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--default-character-set=utf8mb4",
            "--skip-add-locks",
            "--no-tablespaces",
            "--",
            target.database,
        ]
        written, warnings = _run_dump(
            Path(tool.path).name, args, call.env, out, progress, stop
        )
    return Dumped(
        written,
        server_version,
        tool.version,
        tables,
        heads,
        requires,
        notes=notes,
        warnings=warnings,
    )


def _run_dump(
    name: str,
    args: list[str],
    env: dict[str, str],
    out: BinaryIO,
    progress: Progress | None,
    stop: Stop | None,
    cuts: stream.Cuts | None = None,
) -> tuple[Written, list[str]]:
    tool = Tool(name, args, env, stdout=subprocess.PIPE)
    try:
        assert tool.process.stdout is not None
        try:
            written = stream.compress_into(
                tool.process.stdout, out, progress=progress, stop=stop, cuts=cuts
            )
        except BaseException:
            exited = tool.process.poll()
            tool.kill()
            if exited:  # a tool that failed first explains more than we can
                stream.check_tool(name, exited, tool.stderr())
            raise
        return written, tool.finish()
    finally:
        tool.close()


def _dump_sqlite(
    target: Target,
    prepared: Any,
    out: BinaryIO,
    work: Path,
    progress: Progress | None,
    stop: Stop | None,
) -> Dumped:
    raw_name = f".dbr-partial-{os.getpid()}-{time.monotonic_ns()}.sqlite"
    raw = work / raw_name
    try:
        online_copy(target.sqlite_path, raw, stop=stop)
        engine = sa.create_engine(f"sqlite:///{raw}", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                tables = inspect.row_counts(conn, "sqlite")
                heads = inspect.alembic_heads(conn, "sqlite")
        finally:
            engine.dispose()
        with open(raw, "rb") as source:
            written = stream.compress_into(source, out, progress=progress, stop=stop)
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{raw}{suffix}").unlink(missing_ok=True)
    return Dumped(
        written, sqlite3.sqlite_version, sqlite3.sqlite_version, tables, heads
    )


def online_copy(
    source: Path,
    destination: Path,
    *,
    stop: Stop | None = None,
    stall_timeout: float = SQLITE_STALL_TIMEOUT,
    pages: int = SQLITE_PAGES_PER_STEP,
) -> None:
    """Copy a live SQLite database with the backup API; WAL content is included.

    Writers on other connections restart the copy; when no step has got closer to
    the end for stall_timeout seconds, the copy gives up instead of looping forever.
    """
    best = [float("inf"), time.monotonic()]

    def watch(status: int, remaining: int, total: int) -> None:
        if stop is not None and stop():
            raise Cancelled("backup cancelled")
        now = time.monotonic()
        if remaining < best[0]:
            best[0], best[1] = remaining, now
        elif now - best[1] > stall_timeout:
            raise _Stalled(
                f"no progress for {stall_timeout:.0f} s; {remaining} of "
                f"{total} pages left"
            )

    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(destination)
    try:
        src.backup(dst, pages=pages, progress=watch, sleep=0.05)
        dst.execute("pragma journal_mode=delete")
    except _Stalled as exc:
        raise DbrError(
            f"the online backup of {source} stalled",
            cause=str(exc),
            hint="writers keep changing the database; retry when it is quieter",
        ) from None
    except sqlite3.Error as exc:
        raise DbrError(f"cannot back up {source}", cause=str(exc)) from None
    finally:
        dst.close()
        src.close()


class _Stalled(Exception):
    pass
