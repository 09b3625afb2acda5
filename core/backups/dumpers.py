"""One dumper per dialect: each writes a compressed dump and returns manifest facts.

PostgreSQL: pg_dump custom format from an exported snapshot, so the row counts read
in that snapshot describe exactly what was dumped. MySQL/MariaDB: one consistent
snapshot (--single-transaction) with routines, triggers and events, binary-safe;
the rows are counted in the dump itself as it streams past, since MySQL cannot
share a snapshot between two sessions. SQLite: the online backup API (WAL content
included), never a file copy.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
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
# MySQL engines whose tables show other tables' rows (or a remote server's).
_NO_ROWS_OF_THEIR_OWN = {"MRG_MYISAM", "MRG_ISAM", "FEDERATED"}


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


# The rest of a token: a quoted name, /*! (read through), a comment ("--"
# then any space or control character, or "#", to the line's end), ;;, other.
_BODY_REST = (
    rb"|`[^`]*+`|/\*!\d*|/\*.*?\*/|(?:--(?=[\x00-\x20])|#)[^\n]*+|;;"
    rb"|[^'\"`/;#-]++|."
)
_ESCAPED = (rb"'[^'\\]*+(?:\\.[^'\\]*+)*+'", rb"\"[^\"\\]*+(?:\\.[^\"\\]*+)*+\"")
# Strings without backslash escapes (NO_BACKSLASH_ESCAPES), and "names"
# (ANSI_QUOTES).
_PLAIN = (rb"'[^']*+'", rb"\"[^\"]*+\"")
# Tokens of SQL in a dump's DELIMITER ;; block, by the sql_mode it was made in:
# (NO_BACKSLASH_ESCAPES, ANSI_QUOTES).
_BODY_TOKENS = {
    (plain, ansi): re.compile(
        (_PLAIN if plain else _ESCAPED)[0]
        + b"|"
        + (_PLAIN if plain or ansi else _ESCAPED)[1]
        + _BODY_REST,
        re.DOTALL,
    )
    for plain in (False, True)
    for ansi in (False, True)
}


class MysqlRows:
    """Counts, per table, the rows a mysqldump (or mariadb-dump) stream holds,
    as the stream passes.

    The dump creates each table on a line of its own: CREATE TABLE `t` (. A
    view's stand-in is inside a /*!50001 comment and is not a table; triggers,
    routines and events, whose bodies are SQL, sit between DELIMITER ;; and
    DELIMITER ; and are skipped. Rows follow INSERT INTO `t` VALUES, on that
    line (MySQL) or one per line after it (MariaDB), up to a line that ends in
    ";". The dump escapes every newline inside a value, so no line ends inside
    a string: where rows come one per line, each line that opens with "(" is a
    row; otherwise each "(" left once the quoted strings are taken out opens
    one. Memory grows with the longest line, which the server must take in one
    piece too (max_allowed_packet). A line it cannot read stops the counting
    (unreadable says which); the dump goes on.
    """

    LONGEST_BODY = 1 << 24  # bytes; longer, it is taken for a misreading
    # Possessive (*+): a failed match must not try every way to split ``.
    _NAME = rb"`((?:[^`]|``)++)`"
    _TABLE = re.compile(rb"CREATE TABLE " + _NAME + rb" \(")
    _COLUMNS = rb"(?: \(`(?:[^`]|``)*+`(?:, ?`(?:[^`]|``)*+`)*+\))?"
    _INSERT = re.compile(rb"INSERT INTO " + _NAME + _COLUMNS + rb" VALUES")
    _STATEMENT = re.compile(
        rb"^(?:INSERT INTO `|CREATE TABLE `|DELIMITER (?!;\r?$)|/\*!\d+ SET sql_mode )",
        re.MULTILINE,
    )
    # Each trigger, routine and event is dumped with the sql_mode it was made in.
    _MODE = re.compile(rb"/\*!\d+ SET sql_mode +=[ ]*(?:'([^']*)'|@)")
    _BLOCK_END = re.compile(rb"[ \t]*\r?\nDELIMITER ;[ \t]*\r?\n")
    _STRING = re.compile(_ESCAPED[0], re.DOTALL)  # the dump's own: backslashes

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.unreadable: str | None = None
        self.longest = 0  # bytes of the longest statement: one packet to a server
        self._open: list[bytes] = []  # the line still being read
        self._since = 0  # bytes since the last statement ended
        self._into: str | None = None  # the table of an INSERT not ended yet
        self._row_a_line = False  # its rows come one per line (MariaDB)
        self._body: bytes | None = None  # a trigger, routine or event not ended
        self._tokens = _BODY_TOKENS[False, False]  # its sql_mode's quoting

    def __call__(self, block: bytes) -> None:
        last = block.rfind(b"\n")
        if last < 0:
            self._open.append(block)
            return
        self._open.append(block[: last + 1])
        lines = b"".join(self._open)
        self._open = [block[last + 1 :]] if last + 1 < len(block) else []
        self._measure(lines)
        if self.unreadable is None:
            self._count(lines)

    def _measure(self, lines: bytes) -> None:
        """The longest stretch between two line ends after ";": no statement of
        the dump is longer (it counts, whether or not the rows can be)."""
        at = 0
        while (end := lines.find(b";\n", at)) >= 0:
            self.longest = max(self.longest, self._since + end + 2 - at)
            self._since, at = 0, end + 2
        self._since += len(lines) - at

    def _count(self, lines: bytes) -> None:
        """Count the rows in whole lines, picking up where the last call left."""
        at = 0
        while at < len(lines):
            if self._into is not None:
                end = lines.find(b";\n", at)  # a line ending in ; ends the INSERT
                upto = len(lines) if end < 0 else end + 2
                values = lines[at:upto]
                if self._row_a_line and b"),(" not in values:
                    rows = values.count(b"\n(") + values.startswith(b"(")
                else:
                    rows = self._STRING.sub(b"", values).count(b"(")
                self.counts[self._into] += rows
                if end < 0:
                    return
                self._into, at = None, upto
                continue
            if self._body is not None:
                ended = self._skip_body(lines, at)
                if ended is None:
                    return
                self._body, at = None, ended
                continue
            found = self._STATEMENT.search(lines, at)
            if found is None:
                return
            if lines.startswith(b"DELIMITER", found.start()):
                if not lines.startswith(b"DELIMITER ;;", found.start()):
                    self.unreadable = "a DELIMITER other than ;;"
                    return
                self._body, at = b"", lines.index(b"\n", found.start()) + 1
            elif lines.startswith(b"/*!", found.start()):
                self._mode(lines, found.start())
                at = found.end()
            elif lines.startswith(b"INSERT", found.start()):
                insert = self._INSERT.match(lines, found.start())
                if insert is None:
                    end = lines.find(b"\n", found.start())
                    self.unreadable = lines[found.start() : end][:60].decode(
                        errors="replace"
                    )
                    return
                self._into = self._name(insert)
                self.counts.setdefault(self._into, 0)
                at = insert.end()
                self._row_a_line = lines.startswith(b"\n", at)
            else:
                table = self._TABLE.match(lines, found.start())
                if table is not None:
                    self.counts.setdefault(self._name(table), 0)
                at = found.end()

    def _skip_body(self, lines: bytes, at: int) -> int | None:
        """Where in lines, from at, the DELIMITER ;; block being read ends;
        None when it goes on past them (what cannot be judged yet is kept).
        Its strings and comments can hold anything, "DELIMITER ;" included:
        it ends at a ;; outside them that a DELIMITER ; line follows."""
        kept = len(self._body or b"")
        text = (self._body or b"") + lines[at:]
        done = 0
        while (token := self._tokens.match(text, done)) is not None:
            piece = token.group()
            if (
                piece in (b"'", b'"', b"`")
                or text.startswith(b"/*", token.start())
                and piece == b"/"
            ):
                break  # a string or comment that the next lines close
            if piece.startswith(b"/*!"):
                self._mode(text, token.start())
            if piece == b";;":
                end = self._BLOCK_END.match(text, token.end())
                if end is not None:
                    return at + end.end() - kept
                if text.count(b"\n", token.end()) < 2:
                    break  # the line after it is still to come
            done = token.end()
        self._body = text[done:]
        if len(self._body) > self.LONGEST_BODY:
            self.unreadable = "a trigger, routine or event body that never ends"
        return None

    def _mode(self, text: bytes, at: int) -> None:
        """Follow the dump's SET sql_mode: without backslash escapes, 'C:\\' is
        a whole string in the bodies that follow; with ANSI_QUOTES, "a\\" is a
        whole name."""
        found = self._MODE.match(text, at)
        if found is not None:
            mode = found.group(1) or b""
            plain = b"NO_BACKSLASH_ESCAPES" in mode
            ansi = b"ANSI_QUOTES" in mode or b"ANSI," in mode + b","
            self._tokens = _BODY_TOKENS[plain, ansi]

    def end(self) -> None:
        """The dump is over: a statement still open means it was misread."""
        if self.unreadable is None and (self._body is not None or self._into):
            self.unreadable = "the end of the dump, inside a statement"

    @staticmethod
    def _name(found: re.Match[bytes]) -> str:
        return found.group(1).replace(b"``", b"`").decode("utf-8", errors="replace")


def _dump_mysql(
    target: Target,
    prepared: Any,
    out: BinaryIO,
    work: Path,
    progress: Progress | None,
    stop: Stop | None,
) -> Dumped:
    tool, server_version = prepared
    rows = MysqlRows()
    with target.engine().connect() as conn:
        # Rows are counted in this snapshot, taken just before the dump's own,
        # only where the dump cannot be read; held open, it costs nothing else.
        conn.execute(sa.text("set session transaction isolation level repeatable read"))
        conn.execute(sa.text("start transaction with consistent snapshot"))
        heads = inspect.alembic_heads(conn, "mysql")
        requires = inspect.requirements(conn, "mysql")
        odd = inspect.non_transactional_tables(conn)
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
                Path(tool.path).name, args, call.env, out, progress, stop, tap=rows
            )
        # A MERGE or FEDERATED table's rows are other tables': the dump holds
        # none, and its count after a restore is theirs.
        tables = {
            name: count
            for name, count in rows.counts.items()
            if odd.get(name, "").upper() not in _NO_ROWS_OF_THEIR_OWN
        }
        rows.end()
        listed = set(inspect.table_names(conn, "mysql"))
        if rows.unreadable is None and set(rows.counts) != listed:
            rows.unreadable = "tables other than the database's: " + ", ".join(
                sorted(set(rows.counts) ^ listed)[:5]
            )
        # The client sends each statement to the server in one packet.
        requires["max_allowed_packet"] = rows.longest
        if rows.unreadable is not None:
            tables = inspect.row_counts(conn, "mysql")
            notes.append(
                "row counts taken in a snapshot just before the dump's, which "
                f"writes in between can change: dbr could not read {rows.unreadable!r}"
            )
        conn.execute(sa.text("commit"))
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
    tap: Callable[[bytes], None] | None = None,
) -> tuple[Written, list[str]]:
    tool = Tool(name, args, env, stdout=subprocess.PIPE)
    try:
        assert tool.process.stdout is not None
        try:
            written = stream.compress_into(
                tool.process.stdout,
                out,
                progress=progress,
                stop=stop,
                cuts=cuts,
                tap=tap,
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
