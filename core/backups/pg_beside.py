"""A PostgreSQL restore beside the live database, swapped in by renaming.

pg_restore fills a new database on the same server: the pre-data section from the
head of the dump, the table data by JOBS pg_restore processes that each read their
own decompression of the backup and load their share of the tables, then the
post-data section (indexes, constraints) by pg_restore -j from the dump's head. Its
row counts are checked there while the live database keeps serving reads; writes
wait behind a lock taken first, so none is lost. Only then are the two databases
swapped by two renames in one transaction, and the old one is dropped. A failure
before the swap drops the new database and leaves the live one as it was.

The in-place restore (one transaction, no parallelism) remains for what this cannot
do: see blockers().
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.backups import stream, tools
from core.backups.catalog import Backup
from core.backups.dumpers import pg_server_major
from core.backups.inspect import compare_counts, count_rows, literal, quote, row_counts
from core.backups.stream import Progress, Stop, Tool
from core.config import TargetConfig
from core.errors import Cancelled, DbrError
from core.state import new_id
from core.targets import Target

log = logging.getLogger(__name__)

JOBS = 2  # pg_restore processes loading data, and -j of the post-data section
# Seconds per heap byte loaded and per row put in an index: measured here,
# only their ratio matters (it weighs tables when sharing them out).
LOAD_COST = 1.4e-8
INDEX_COST = 2.4e-7
SWAP_TIMEOUT = 10.0  # seconds to wait for ended sessions to go before the swap
# Settings whose value is a list: each element is quoted on its own.
# Post-data entries a loader may build for its own tables.
_LOCAL = ("INDEX", "CONSTRAINT", "FK", "TRIGGER")  # "FK CONSTRAINT" lists as FK
_LIST_SETTINGS = {"search_path", "temp_tablespaces", "local_preload_libraries",
                  "session_preload_libraries"}  # fmt: skip
Log = Callable[[str], None]


def blockers(target: Target, backup: Backup) -> list[str]:
    """Why target cannot be restored beside and swapped; [] when it can."""
    found = []
    with target.engine().connect() as conn:
        facts = conn.execute(
            sa.text(
                "select current_setting('server_version_num')::int, r.rolsuper, "
                "r.rolcreatedb, pg_get_userbyid(d.datdba) = current_user, "
                "d.datistemplate from pg_database d, pg_roles r "
                "where d.datname = current_database() and r.rolname = current_user"
            )
        ).one()
        version, superuser, createdb, owner, template = facts
        if version < 130000:
            found.append("the server is older than PostgreSQL 13")
        if not (superuser or (createdb and owner)):
            found.append(
                "the connecting role neither is a superuser nor owns the "
                "database with CREATEDB"
            )
        if template:
            found.append("the database is a template")
        slots = conn.execute(
            sa.text(
                "select slot_name from pg_replication_slots "
                "where database = current_database()"
            )
        ).scalars()
        found += [f"logical replication slot {slot!r} is bound to it" for slot in slots]
        if (
            not superuser
            and conn.execute(
                sa.text(
                    "select 1 from pg_db_role_setting s join pg_database d on "
                    "d.oid = s.setdatabase where d.datname = current_database() "
                    "and s.setrole <> 0"
                )
            ).first()
        ):
            found.append("it has per-role settings only a superuser can copy")
        stuck = _unendable(conn, target.database, keep=-1)
        if stuck:
            found.append(
                "connected sessions this role cannot end (the swap needs them "
                "gone): " + ", ".join(stuck)
            )
        outside = sorted(set(user_schemas(conn)) - replaced_schemas(backup))
        if outside:
            found.append(
                "schemas outside the backup would be lost: " + ", ".join(outside)
            )
    return found


def replaced_schemas(backup: Backup) -> set[str]:
    """The PostgreSQL schemas a restore drops whole and re-creates from the dump:
    every table in them that the backup lacks is dropped with them."""
    requires = backup.manifest.get("requires") or {}
    schemas = set(requires.get("schemas") or ["public"])
    return schemas | {t.split(".", 1)[0] for t in backup.tables if "." in t}


def user_schemas(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            sa.text(
                "select nspname from pg_namespace where nspname not in "
                "('information_schema') and nspname not like 'pg\\_%'"
            )
        ).scalars()
    )


def sessions(target: Target) -> list[str]:
    """Other sessions connected to target now: a swap ends them."""
    with target.engine().connect() as conn:
        rows = conn.execute(
            sa.text(
                "select pid, usename, application_name, state from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid() "
                "and coalesce(backend_type, 'client backend') = 'client backend' "
                "order by pid"
            )
        ).all()
    return [
        f"pid {pid} ({user}, {state or 'idle'}" + (f", {app})" if app else ")")
        for pid, user, app, state in rows
    ]


def sibling(target: Target, database: str) -> Target:
    """The database named database on target's server, as the same role."""
    url = target.url.set(database=database).render_as_string(hide_password=False)
    return Target(TargetConfig(name=f"{target.name} ({database})", url=url))


def load(
    target: Target,
    backup: Backup,
    *,
    fence: Callable[[], Any],
    settings: str,
    progress: Progress | None = None,
    stop: Stop | None = None,
    log: Log | None = None,
) -> dict[str, int]:
    """Restore backup beside target, check its row counts, swap it in.

    fence() opens, on target, the transaction whose locks hold off writers until
    the swap; it returns that connection. Returns the row counts of the database
    swapped in.
    """
    say = log or (lambda text: None)
    tag = new_id()
    base = _base(target.database)
    beside = sibling(target, f"{base}__dbr_new_{tag}")
    maintenance = _maintenance(target)
    reader = reader_for(target, backup)[0].path
    with maintenance.engine().connect() as admin:
        _clear_leftovers(admin, base)
    holder = fence()
    swapped = False
    try:
        with _autocommit(maintenance) as admin:
            _create_like(admin, target, beside.database)
        with target.client_call() as call, tempfile.TemporaryDirectory() as work:
            call.env["PGOPTIONS"] = " ".join(
                filter(None, (call.env.get("PGOPTIONS"), settings))
            )
            call.env["PGDATABASE"] = beside.database
            counts = _restore(
                reader, call.env, backup, beside, Path(work), progress, stop, say
            )
        differences = compare_counts(backup.tables, counts)
        if differences:
            raise DbrError(
                "the restored row counts differ from the manifest's, so the "
                f"restored database was dropped and {target.name} left as it was",
                cause="; ".join(differences[:10]),
            )
        if stop is not None and stop():
            raise Cancelled("restore cancelled before the swap")
        beside.dispose()
        target.dispose()  # our own pooled sessions would only be ended
        say(f"swapping the restored database in for {target.database}")
        with maintenance.engine().connect() as admin:
            _swap(admin, target, beside.database, holder, f"{base}__dbr_old_{tag}", say)
        swapped = True
        return counts
    finally:
        beside.dispose()
        with suppress(Exception):
            holder.close()
        if not swapped:
            with _autocommit(maintenance) as admin:
                _drop(admin, beside.database)
        maintenance.dispose()
        target.dispose()


def _base(database: str) -> str:
    """The start of the names a restore of database gives its databases: a
    prefix of the name that fits PostgreSQL's 63 bytes, and a hash of all of it
    (two long names with one prefix must not take each other's leftovers)."""
    digest = hashlib.sha1(database.encode()).hexdigest()[:8]
    return f"{database.encode()[:30].decode(errors='ignore')}_{digest}"


@contextmanager
def _counting(beside: Target) -> Iterator[Connection]:
    """A connection for counting rows while the restore still works: each count
    lets go of its table at once, and runs in one process (parallel workers
    would only take the cores the restore needs)."""
    with _autocommit(beside) as conn:
        conn.exec_driver_sql("set max_parallel_workers_per_gather = 0")
        yield conn


@contextmanager
def _autocommit_on(conn: Connection) -> Iterator[Connection]:
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        yield c


@contextmanager
def _autocommit(on: Target) -> Iterator[Connection]:
    with on.engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def _restore(
    reader: str,
    env: dict[str, str],
    backup: Backup,
    beside: Target,
    work: Path,
    progress: Progress | None,
    stop: Stop | None,
    say: Log,
) -> dict[str, int]:
    connect = f"--dbname={_conninfo(beside.database)}"
    common = ["--exit-on-error", "--no-password", connect]
    head = work / "head.dump"
    _pre_data(reader, env, backup, common, head, stop)
    shares, last, data = _work_lists(reader, env, head, backup)
    say(f"loading table data with {len(shares)} pg_restore processes")
    starts = _frame_starts(backup, data)
    if starts and not _frames_fit(reader, env, backup, data, starts, work):
        log.warning("backup %s: its frames are not where its manifest says", backup.id)
        starts = []  # then each loader reads the whole file
    parts = [_stretches(starts, data, share) for share in shares]
    loaders = []
    for number, lines in enumerate(shares):
        chosen = work / f"part-{number}.list"
        chosen.write_text("\n".join(lines) + "\n")
        loaders.append(
            Tool(
                f"pg_restore (data, part {number + 1} of {len(shares)})",
                [
                    reader,
                    "--section=data",
                    "--section=post-data",
                    f"--use-list={chosen}",
                    *common,
                ],  # fmt: skip
                env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
            )
        )
    counted: dict[str, int] = {}

    def count(number: int) -> None:
        """Count a loader's tables as soon as it is done, while others work."""
        with _counting(beside) as conn:
            for table in _tables_of(shares[number]):
                counted[table] = count_rows(conn, "postgresql", table)

    try:
        _feed_all(loaders, parts, backup, progress, stop, count)
    finally:
        for loader in loaders:
            loader.close()
    say("data loaded; building the remaining indexes and constraints")
    final = work / "last.list"
    final.write_text("\n".join(last) + "\n")
    post = Tool(
        "pg_restore (constraints)",
        [
            reader,
            "--section=post-data",
            f"--jobs={JOBS}",
            f"--use-list={final}",
            *common,
            str(head),
        ],  # fmt: skip
        env,
        stdout=subprocess.DEVNULL,
    )
    flushing = threading.Thread(target=_flush_early, args=(beside,), daemon=True)
    flushing.start()
    try:
        # The data is all in: counting overlaps with the last constraints.
        with _counting(beside) as conn:
            counts = row_counts(conn, "postgresql", partitions=True, known=counted)
        while post.process.poll() is None:
            if stop is not None and stop():
                raise Cancelled("restore cancelled while building constraints")
            time.sleep(0.05)
        post.finish()
    finally:
        post.close()
        flushing.join()
    return counts


def _tables_of(lines: list[str]) -> list[str]:
    """The tables whose data a list loads, named as row_counts() does; a name
    the list cannot show unambiguously (it has spaces) is left out."""
    tables = []
    for line in lines:
        words = line.split()
        if words[3:5] == ["TABLE", "DATA"] and len(words) == 8:
            schema, name = words[5], words[6]
            tables.append(name if schema == "public" else f"{schema}.{name}")
    return tables


def _flush_early(beside: Target) -> None:
    """Write the restored pages out now, while the last constraints build: the
    DROP DATABASE after the swap forces a checkpoint, which then has little
    left to do. Only a superuser or pg_checkpoint may; others wait then."""
    with suppress(sa.exc.DBAPIError), _autocommit(beside) as conn:
        allowed = conn.execute(
            sa.text(
                "select r.rolsuper or coalesce((select pg_has_role(current_user, "
                "c.oid, 'member') from pg_roles c where c.rolname = 'pg_checkpoint'), "
                "false) from pg_roles r where r.rolname = current_user"
            )
        ).scalar()
        if allowed:
            conn.exec_driver_sql("checkpoint")


def _work_lists(
    reader: str, env: dict[str, str], head: Path, backup: Backup
) -> tuple[list[list[str]], list[str], list[str]]:
    """Share the table data among JOBS loaders by the work it brings; each
    loader then builds the indexes, keys and triggers of its own tables. The
    rest of the post-data section (what spans loaders, partitioned tables'
    indexes...) is returned apart."""

    def listed(*options: str) -> list[str]:
        done = subprocess.run(
            [reader, "--list", *options, str(head)],
            env=env,
            capture_output=True,
            text=True,
        )
        stream.check_tool("pg_restore --list", done.returncode, done.stderr)
        return [
            line
            for line in done.stdout.splitlines()
            if line.strip() and not line.startswith(";")
        ]

    everything = listed()
    order = {_dump_id(line): number for number, line in enumerate(everything)}
    table_oid = {
        _dump_id(line): line.split()[2]
        for line in everything
        if line.split()[3:4] == ["TABLE"] and line.split()[4:5] != ["DATA"]
    }
    depends = _post_data_dependencies(reader, env, head)
    post = listed("--section=post-data")
    data = listed("--section=data")
    tables = [line for line in data if " TABLE DATA " in line]
    # Entries that touch one table only (its indexes and keys) can be built by
    # the loader of that table as soon as its data is in.
    own: dict[int, str] = {}
    for line in post:
        touched = {
            table_oid[d] for d in depends.get(_dump_id(line), ()) if d in table_oid
        }
        if line.split()[3] in ("INDEX", "CONSTRAINT") and len(touched) == 1:
            own[_dump_id(line)] = touched.pop()
    builds = {oid: list(own.values()).count(oid) for oid in set(own.values())}
    hints = (backup.manifest.get("restore_hints") or {}).get(
        "bytes_and_rows_by_oid", {}
    )

    def cost(oid: str) -> float:
        size, rows = hints.get(oid, (0, -1))
        rows = rows if rows >= 0 else size / 100
        return size * LOAD_COST + rows * builds.get(oid, 0) * INDEX_COST + 1e-6

    job_of_oid: dict[str, int] = {}
    loads = [0.0] * JOBS
    shares: list[list[str]] = [[] for _ in range(JOBS)]
    for line in sorted(tables, key=lambda line: -cost(line.split()[2])):
        oid = line.split()[2]
        job = loads.index(min(loads))
        loads[job] += cost(oid)
        job_of_oid[oid] = job
        shares[job].append(line)
    shares[0] += [line for line in data if " TABLE DATA " not in line]
    # Then whatever else (foreign keys, triggers) touches only tables of one
    # loader and needs only what that loader builds, in the dump's order. An
    # index or key of one table goes with it even where the dump orders it
    # after its partitioned parent's: those are linked later (INDEX ATTACH).
    last = []
    routed: dict[int, int] = {}
    post_ids = {_dump_id(line) for line in post}
    for line in sorted(post, key=lambda line: order[_dump_id(line)]):
        number = _dump_id(line)
        needs = depends.get(number, set())
        kind = line.split()[3]
        jobs = {job_of_oid.get(table_oid[d], -1) for d in needs if d in table_oid}
        if kind in ("FK", "TRIGGER"):  # also what it needs built first
            jobs |= {routed.get(d, -1) for d in needs if d in post_ids}
        if len(jobs) == 1 and -1 not in jobs and kind in _LOCAL:
            routed[number] = job = jobs.pop()
            shares[job].append(line)
        else:
            last.append(line)
    for share in shares:
        share.sort(key=lambda line: order[_dump_id(line)])  # a stream goes forward
    kept = [share for job, share in enumerate(shares) if job == 0 or share]
    return kept, last, data


def _post_data_dependencies(
    reader: str, env: dict[str, str], head: Path
) -> dict[int, set[int]]:
    """Which entries each post-data entry depends on, from pg_restore's verbose
    script of that section."""
    done = subprocess.run(
        [reader, "--verbose", "--section=post-data", "--file=-", str(head)],
        env=env,
        capture_output=True,
        text=True,
    )
    stream.check_tool(
        "pg_restore --verbose", done.returncode, done.stderr, errors_fatal=False
    )
    found: dict[int, set[int]] = {}
    for block in done.stdout.split("\n-- TOC entry ")[1:]:
        number = int(block.split(" ", 1)[0])
        listed = re.search(r"^-- Dependencies: ([\d ]+)$", block, re.MULTILINE)
        found[number] = {int(d) for d in listed.group(1).split()} if listed else set()
    return found


def _dump_id(line: str) -> int:
    return int(line.split(";", 1)[0])


def _pre_data(
    reader: str,
    env: dict[str, str],
    backup: Backup,
    common: list[str],
    head: Path,
    stop: Stop | None,
) -> None:
    """Create the schema from the dump's head; keep that head (its table of
    contents) for listing and for the post-data section."""
    tool = Tool(
        "pg_restore (schema)",
        [reader, "--section=pre-data", *common],
        env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        with open(head, "wb") as kept:
            stdin = tool.process.stdin
            assert stdin is not None
            try:
                for chunk in stream.decompressed(backup.path, stop=stop):
                    kept.write(chunk)
                    stdin.write(chunk)
            except BrokenPipeError:
                pass  # it has read all it needs: the table of contents
        tool.finish()
    finally:
        tool.close()


def _frame_starts(backup: Backup, data: list[str]) -> list[tuple[int, int, int]]:
    """Where each table's data starts a frame of the backup file, as (place in
    data, file offset, offset where the next one starts or the file ends); data
    is the data section's entries in the file's order.

    A frame counts only where it starts a table's data in that order (a look-
    alike of a block start in the table of contents names no table). A list
    that is not [dump id, offset] pairs at rising offsets inside the file is
    not used at all.
    """
    listed = (backup.manifest.get("restore_hints") or {}).get("frames_by_dump_id")
    pairs = listed if isinstance(listed, list) else []
    if not all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(type(value) is int for value in pair)
        and 0 < pair[1] < (backup.size or 0)
        for pair in pairs
    ) or any(a[1] >= b[1] for a, b in zip(pairs, pairs[1:], strict=False)):
        log.warning("backup %s: its manifest's frame list is not usable", backup.id)
        return []
    place = {_dump_id(line): order for order, line in enumerate(data)}
    tables = {_dump_id(line) for line in data if " TABLE DATA " in line}
    starts: list[tuple[int, int]] = []
    for number, offset in pairs:
        if number in tables and (not starts or place[number] > starts[-1][0]):
            starts.append((place[number], offset))
    if not starts:
        return []
    ends = [offset for _, offset in starts[1:]] + [backup.size]
    return [
        (order, start, end) for (order, start), end in zip(starts, ends, strict=True)
    ]


def _frames_fit(
    reader: str,
    env: dict[str, str],
    backup: Backup,
    data: list[str],
    starts: list[tuple[int, int, int]],
    work: Path,
) -> bool:
    """Whether the frames are where the manifest says: the file up to the
    first holds the whole table of contents, and each opens that table's
    data block (its type, then its dump id)."""
    for order, start, end in starts:
        expected = b"\x01\x00" + _dump_id(data[order]).to_bytes(4, "little")
        if stream.opening(backup.path, start, end, len(expected)) != expected:
            return False
    head = work / "toc.dump"
    try:
        with head.open("wb") as out:
            for chunk in stream.decompressed(
                backup.path, stretches=[(0, starts[0][1])]
            ):
                out.write(chunk)
    except DbrError:
        return False
    listed = subprocess.run(
        [reader, "--list", str(head)], env=env, capture_output=True, text=True
    )
    return listed.returncode == 0


def _stretches(
    starts: list[tuple[int, int, int]], data: list[str], share: list[str]
) -> list[tuple[int, int]] | None:
    """The stretches of the backup file a loader needs: the head (the table of
    contents) and the frames holding its entries' data. None where the backup
    has no frames (then the loader reads it all, skipping the rest itself). An
    entry whose data began no frame lies in the frame of the table before it.
    """
    if not starts:
        return None
    place = {_dump_id(line): order for order, line in enumerate(data)}
    orders = [order for order, _, _ in starts]
    wanted = {(0, starts[0][1])}
    for line in share:
        order = place.get(_dump_id(line))
        if order is None:
            continue
        frame = bisect.bisect_right(orders, order) - 1
        if frame >= 0:
            wanted.add(starts[frame][1:])
    merged: list[tuple[int, int]] = []
    for start, end in sorted(wanted):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _feed_all(
    loaders: list[Tool],
    parts: list[list[tuple[int, int]] | None],
    backup: Backup,
    progress: Progress | None,
    stop: Stop | None,
    done: Callable[[int], None],
) -> None:
    """Give each loader its own decompression of its part of the backup, in
    parallel, and wait for it, while one more thread hashes the whole file,
    which must match the manifest. The first failure kills every loader, and
    is the one raised; done(number) runs as each loader succeeds."""
    failures: list[BaseException] = []
    read = [0] * len(loaders)
    total = sum(
        backup.size if part is None else sum(end - start for start, end in part)
        for part in parts
    )

    def feed(number: int, report: Progress | None) -> None:
        loader = loaders[number]

        def seen(done: int) -> None:
            read[number] = done
            if report is not None:
                report(sum(read) * backup.size // max(total, 1))

        chunks = stream.decompressed(
            backup.path, progress=seen, stop=stop, stretches=parts[number]
        )
        try:
            stream.feed(loader, chunks)
            chunks.close()
            while loader.process.poll() is None:  # building its indexes
                if stop is not None and stop():
                    raise Cancelled("restore cancelled")
                seen(read[number])  # the others may still be reading
                time.sleep(0.05)
            loader.finish()
            if not failures:
                done(number)
        except BaseException as exc:
            failures.append(exc)
            for other in loaders:
                other.kill()

    def check() -> None:
        try:
            if stream.sha256_of(backup.path, stop) != backup.sha256:
                raise DbrError(
                    f"backup {backup.id} changed while it was restored",
                    cause="its SHA-256 no longer matches the manifest",
                    hint=f"verify it with `dbr backups verify {backup.id}`",
                )
        except BaseException as exc:
            failures.append(exc)
            for loader in loaders:
                loader.kill()

    finished = threading.Event()

    def watch() -> None:
        """A loader building indexes reads nothing, so its feeder, blocked
        writing to it, cannot see a cancel: this kills them all at once."""
        while not finished.wait(0.1):
            if stop is not None and stop():
                failures.append(Cancelled("restore cancelled"))
                for loader in loaders:
                    loader.kill()
                return

    threads = [
        threading.Thread(target=feed, args=(number, None), daemon=True)
        for number in range(1, len(loaders))
    ]
    threads.append(threading.Thread(target=check, daemon=True))
    threads.append(threading.Thread(target=watch, daemon=True))
    for thread in threads:
        thread.start()
    feed(0, progress)  # here: progress reaches the caller's thread
    for thread in threads[:-1]:
        thread.join()
    finished.set()
    threads[-1].join()
    if failures:
        raise failures[0]


def _conninfo(database: str) -> str:
    escaped = database.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}'"


def _maintenance(target: Target) -> Target:
    """A database to run CREATE, RENAME and DROP DATABASE from: neither target nor
    the new one can be renamed from inside."""
    for name in ("postgres", "template1"):
        candidate = sibling(target, name)
        try:
            with candidate.engine().connect():
                return candidate
        except sa.exc.DBAPIError:
            candidate.dispose()
    raise DbrError(
        f"cannot connect to the postgres or template1 database of {target.host}",
        hint="a restore swaps databases from there; allow the role to connect",
    )


def reader_for(target: Target, backup: Backup) -> tuple[tools.ClientTool, int]:
    """The pg_restore that reads backup into target (as new as the server and
    as the pg_dump that wrote it), and the server's major version."""
    server = pg_server_major(target)[0]
    written = re.search(r"\)\s*(\d+)", backup.manifest.get("client_version") or "")
    needed = max(server, int(written.group(1)) if written else 0)
    return tools.pick_pg_tool("pg_restore", needed), server


def _leftovers(admin: Connection, base: str, kind: str) -> list[str]:
    """Databases named by a restore of this target ("new" or "old")."""
    pattern = base.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    names = admin.execute(
        sa.text("select datname from pg_database where datname like :p"),
        {"p": pattern + f"\\_\\_dbr\\_{kind}\\_%"},
    ).scalars()
    found = list(names)
    admin.commit()
    return found


def _clear_leftovers(admin: Connection, base: str) -> None:
    """Drop new databases an interrupted restore of this target left behind; the
    caller holds the target's lock, so no restore of it is running."""
    for name in _leftovers(admin, base, "new"):
        log.warning("dropping %s, left by an interrupted restore", name)
        with _autocommit_on(admin) as conn:
            _drop(conn, name)


def reopen_if_interrupted(target: Target) -> str | None:
    """If a restore stopped during its swap (killed in the instant between
    closing target to new connections and renaming) left it closed, open it
    again; returns what was done, or None. Only when that restore's new
    database is still there: an operator's own ALLOW_CONNECTIONS false stays,
    and is named."""
    try:
        with target.engine().connect():
            return None
    except sa.exc.OperationalError as exc:
        if "not currently accepting connections" not in str(exc.orig):
            return None
    target.dispose()
    maintenance = _maintenance(target)
    try:
        with _autocommit(maintenance) as admin:
            if not _leftovers(admin, _base(target.database), "new"):
                raise DbrError(
                    f"database {target.database} does not accept connections "
                    "(ALLOW_CONNECTIONS is off), so it cannot be restored",
                    hint=f'if it should, run ALTER DATABASE "{target.database}" '
                    "ALLOW_CONNECTIONS true as its owner, then restore again",
                )
            admin.exec_driver_sql(
                f"alter database {_ident(target.database)} allow_connections true"
            )
    finally:
        maintenance.dispose()
    note = (
        f"{target.database} was closed to connections by a restore stopped during "
        "its swap; dbr opened it again (nothing had been swapped)"
    )
    log.warning(note)
    return note


def _create_like(admin: Connection, target: Target, name: str) -> None:
    """Create database name with the target's encoding, locale, owner,
    tablespace, connection limit, privileges, settings and comment."""
    try:
        _copy_database(admin, target.database, name)
    except sa.exc.DBAPIError as exc:
        raise DbrError(
            f"cannot create the database the restore of {target.name} goes "
            "into; nothing was changed",
            cause=str(exc.orig).strip().splitlines()[0],
            hint="grant what it names, or restore with --in-place",
        ) from None


def _copy_database(admin: Connection, model: str, name: str) -> None:
    row = admin.execute(
        sa.text(
            "select d.oid, to_jsonb(d) as d, pg_get_userbyid(d.datdba) as owner, "
            "pg_encoding_to_char(d.encoding) as encoding, t.spcname, "
            "shobj_description(d.oid, 'pg_database') as comment from pg_database d "
            "join pg_tablespace t on t.oid = d.dattablespace where d.datname = :n"
        ),
        {"n": model},
    ).one()
    facts = row.d
    options = [
        "template template0",
        f"owner {_ident(row.owner)}",
        f"encoding {literal(row.encoding)}",
        f"lc_collate {literal(facts['datcollate'])}",
        f"lc_ctype {literal(facts['datctype'])}",
    ]
    if row.spcname != "pg_default":  # naming it needs CREATE on it
        options.append(f"tablespace {_ident(row.spcname)}")
    if facts.get("datlocprovider") == "i":
        icu = facts.get("daticulocale") or facts.get("datlocale")
        options += ["locale_provider icu", f"icu_locale {literal(icu)}"]
    admin.exec_driver_sql(f"create database {_ident(name)} with " + " ".join(options))
    statements = _acl(admin, row.oid, name)
    for role, entry in admin.execute(
        sa.text(
            "select setrole, unnest(setconfig) from pg_db_role_setting "
            "where setdatabase = :oid"
        ),
        {"oid": row.oid},
    ).all():
        statements.append(_setting(admin, name, role, entry))
    if row.comment is not None:
        statements.append(
            f"comment on database {_ident(name)} is {literal(row.comment)}"
        )
    for statement in statements:
        admin.exec_driver_sql(statement)


def _acl(admin: Connection, oid: int, name: str) -> list[str]:
    rows = admin.execute(
        sa.text(
            "select case a.grantee when 0 then 'public' else "
            "quote_ident(pg_get_userbyid(a.grantee)) end, a.privilege_type, "
            "a.is_grantable, quote_ident(pg_get_userbyid(d.datdba)) "
            "from pg_database d, aclexplode(d.datacl) a where d.oid = :oid"
        ),
        {"oid": oid},
    ).all()
    if not rows:
        return []  # the default privileges, as a new database has
    database = _ident(name)
    statements = [
        f"revoke all on database {database} from public",
        f"revoke all on database {database} from {rows[0][3]}",
    ]
    for grantee, privilege, grantable, _ in rows:
        statements.append(
            f"grant {privilege} on database {database} to {grantee}"
            + (" with grant option" if grantable else "")
        )
    return statements


def _setting(admin: Connection, name: str, role: int, entry: str) -> str:
    key, _, value = entry.partition("=")
    if key in _LIST_SETTINGS:
        values = ", ".join(
            literal(item.strip().strip('"')) for item in _split_list(value)
        )
    else:
        values = literal(value)
    if role == 0:
        return f"alter database {_ident(name)} set {_ident(key)} to {values}"
    who = admin.execute(
        sa.text("select quote_ident(rolname) from pg_roles where oid = :r"),
        {"r": role},
    ).scalar_one()
    return f"alter role {who} in database {_ident(name)} set {_ident(key)} to {values}"


def _split_list(value: str) -> list[str]:
    items, current, quoted = [], "", False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item for item in items if item.strip()]


def _swap(
    admin: Connection, target: Target, new: str, holder: Any, old: str, say: Log
) -> None:
    """Turn new into target's database, or change nothing and say why.

    Refused up front if a connected session cannot be ended, or tables or
    schemas were made in the target since the restore took its locks. Then: no
    new connections, every other session ended while the locks still hold
    writers off (a waiting write fails, it is never committed and lost), the
    locks let go, two renames in one transaction, the old database dropped.
    """
    live = target.database
    stuck = _unendable(admin, live, keep=holder.pid)
    if stuck:
        raise DbrError(
            f"sessions on {live} that this role cannot end are connected, so the "
            "restored database was not swapped in; nothing was changed",
            cause="connected: " + ", ".join(stuck),
            hint="ask them to disconnect, or restore with --in-place",
        )
    limit = admin.execute(
        sa.text("select datconnlimit from pg_database where datname = :d"),
        {"d": live},
    ).scalar_one()
    admin.exec_driver_sql(f"alter database {_ident(new)} connection limit {limit}")
    admin.exec_driver_sql(f"alter database {_ident(live)} allow_connections false")
    admin.commit()
    try:
        _end_sessions(admin, live, keep=holder.pid)
        made = holder.made_since()
        if made:
            raise DbrError(
                f"{', '.join(made)} were created in {live} while it was restored, "
                "so the restored database was not swapped in; nothing was changed",
                hint="keep such changes for after the restore, or restore again",
            )
        holder.close()  # the last session on it: nobody else can connect
        _rename_alone(admin, live, old, new)
    except BaseException:
        admin.rollback()
        with suppress(sa.exc.DBAPIError):
            admin.exec_driver_sql(
                f"alter database {_ident(live)} allow_connections true"
            )
            admin.commit()
        raise
    with _autocommit_on(admin) as conn:
        why = _drop(conn, old)
    if why:
        say(
            f"the restore took effect, but the old database {old} could not be "
            f"dropped ({why}); drop it once you no longer need it"
        )


def _rename_alone(admin: Connection, live: str, old: str, new: str) -> None:
    """Both renames in one transaction, once our own last session has gone."""
    deadline = time.monotonic() + SWAP_TIMEOUT
    while True:
        try:
            with admin.begin_nested():
                admin.exec_driver_sql(
                    f"alter database {_ident(live)} rename to {_ident(old)}"
                )
                admin.exec_driver_sql(
                    f"alter database {_ident(new)} rename to {_ident(live)}"
                )
            admin.commit()
            return
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _unendable(conn: Connection, database: str, keep: int) -> list[str]:
    """Sessions on database this role may not end (pg_terminate_backend needs
    a superuser for a superuser's, else membership in its role or in
    pg_signal_backend)."""
    rows = conn.execute(
        sa.text(
            "select a.pid, a.usename from pg_stat_activity a "
            "join pg_roles r on r.oid = a.usesysid, pg_roles me "
            "where me.rolname = current_user and a.datname = :d "
            "and a.pid <> pg_backend_pid() and a.pid <> :keep "
            "and not me.rolsuper and (r.rolsuper or not ("
            " pg_has_role(current_user, r.oid, 'member') or "
            " pg_has_role(current_user, 'pg_signal_backend', 'member'))) "
            "order by a.pid"
        ),
        {"d": database, "keep": keep},
    ).all()
    return [f"pid {pid} ({user})" for pid, user in rows]


def _end_sessions(admin: Connection, database: str, keep: int) -> None:
    """End every other session on database but keep; raise naming those that
    stay."""
    deadline = time.monotonic() + SWAP_TIMEOUT
    while True:
        admin.execute(sa.text("select pg_stat_clear_snapshot()"))
        left = admin.execute(
            sa.text(
                "select pid, usename from pg_stat_activity where datname = :d "
                "and pid <> pg_backend_pid() and pid <> :keep"
            ),
            {"d": database, "keep": keep},
        ).all()
        if not left:
            return
        for pid, _ in left:
            try:
                with admin.begin_nested():
                    admin.execute(
                        sa.text("select pg_terminate_backend(:p)"), {"p": pid}
                    )
            except sa.exc.DBAPIError:
                pass  # not ours to end: named below if it stays
        if time.monotonic() > deadline:
            who = ", ".join(f"pid {pid} ({user})" for pid, user in left)
            raise DbrError(
                f"sessions on {database} could not be ended for the swap; "
                "nothing was changed",
                cause=f"still connected: {who}",
                hint="end them (pg_terminate_backend needs the right role), "
                "then restore again",
            )
        time.sleep(0.02)


def _drop(admin: Connection, name: str) -> str | None:
    """Drop database name; returns why it could not be, or None."""
    try:
        admin.exec_driver_sql(f"drop database if exists {_ident(name)} with (force)")
    except sa.exc.DBAPIError as exc:
        log.warning("cannot drop %s: %s", name, exc.orig)
        return str(exc.orig).strip().splitlines()[0]
    return None


def _ident(name: str) -> str:
    return quote("postgresql", name)
