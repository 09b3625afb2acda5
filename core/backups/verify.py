"""Verifying a backup: checksum, full decompression, a full read by the engine's tool.

Deep verification restores the backup into a scratch database that dbr creates and
always drops, and compares the row counts with the manifest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.backups import catalog, inspect, loaders, stream, tools
from core.backups.catalog import Backup
from core.backups.inspect import compare_counts
from core.backups.stream import Progress, Stop, Tool
from core.errors import DbrError
from core.state import Store, new_id
from core.targets import Target

log = logging.getLogger(__name__)

MYSQL_FOOTER = b"-- Dump completed"


@dataclass
class Verification:
    backup_id: str
    ok: bool
    deep: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0

    @property
    def problems(self) -> list[str]:
        return [f"{c['check']}: {c['detail']}" for c in self.checks if not c["ok"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "ok": self.ok,
            "deep": self.deep,
            "checks": self.checks,
            "duration": round(self.duration, 3),
        }


def verify(
    store: Store,
    backup: Backup,
    *,
    deep: bool = False,
    target: Target | None = None,
    progress: Progress | None = None,
    stop: Stop | None = None,
) -> Verification:
    """Verify backup, record the outcome in its manifest and the index, return it.

    Deep verification needs target: the server on which the scratch database is
    made (the backup's own target, or any server of the same dialect).
    """
    clock = time.monotonic()
    result = Verification(backup.id, True, deep)

    def check(name: str, ok: bool, detail: str) -> bool:
        result.checks.append({"check": name, "ok": ok, "detail": detail})
        result.ok = result.ok and ok
        return ok

    try:
        _plain(backup, check, progress, stop)
    except DbrError as exc:
        check("read", False, str(exc))
    if deep and result.ok:
        if target is None:
            check("deep", False, f"target {backup.target!r} is not configured")
        else:
            try:
                counts = scratch_restore(backup, target, stop=stop)
                differences = compare_counts(backup.tables, counts)
                check(
                    "row counts in a scratch restore",
                    not differences,
                    "; ".join(differences)
                    or f"the {len(backup.tables)} tables of the manifest match",
                )
            except DbrError as exc:
                check("restore into a scratch database", False, str(exc))
    result.duration = time.monotonic() - clock
    detail = {"checks": result.checks, "duration": round(result.duration, 3)}
    catalog.touch_verification(backup, result.ok, detail)
    if deep:
        catalog.touch_verification(backup, result.ok, detail, deep=True)
    catalog.save(store, backup)
    return result


def _plain(
    backup: Backup, check: Any, progress: Progress | None, stop: Stop | None
) -> None:
    if not backup.path.is_file():
        check("file", False, f"{backup.path} is missing")
        return
    size = backup.path.stat().st_size
    if not check(
        "size",
        size == backup.size,
        f"{size} bytes"
        if size == backup.size
        else f"{size} bytes on disk, the manifest says {backup.size}",
    ):
        return
    digest = hashlib.sha256()
    chunks = stream.decompressed(
        backup.path, progress=progress, stop=stop, digest=digest
    )
    raw = _engine_read(backup, chunks, check)
    actual = digest.hexdigest()
    check(
        "sha256",
        actual == backup.sha256,
        "matches the manifest"
        if actual == backup.sha256
        else f"{actual} differs from the manifest's {backup.sha256}",
    )
    if backup.raw_size is not None and raw is not None:
        check(
            "decompressed size",
            raw == backup.raw_size,
            f"{raw} bytes"
            if raw == backup.raw_size
            else f"{raw} bytes, the manifest says {backup.raw_size}",
        )


def _engine_read(backup: Backup, chunks: Iterator[bytes], check: Any) -> int | None:
    """Feed the whole dump to the engine's own reader; return the bytes read."""
    counted = _Tally(chunks)
    if backup.dialect == "postgresql":
        tool = tools.pick_pg_tool("pg_restore", _major(backup))
        reader = Tool(
            "pg_restore",
            [tool.path, "--file=/dev/null"],
            dict(os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        try:
            stream.feed(reader, iter(counted))
            reader.finish()
            check("pg_restore read", True, "every entry and all data read")
        except stream.ToolFailed as exc:
            check("pg_restore read", False, str(exc))
        finally:
            reader.close()
    elif backup.dialect == "mysql":
        tail = b""
        head = b""
        for chunk in counted:
            head = head or chunk[:1024]
            tail = (tail + chunk)[-4096:]
        # MariaDB 10.11+ puts a sandbox-mode comment before the header line.
        dumped = b"-- MariaDB dump" in head or b"-- MySQL dump" in head
        check(
            "dump header",
            dumped,
            "present"
            if dumped
            else "missing: this is not a mysqldump/mariadb-dump file",
        )
        check(
            "completion footer",
            MYSQL_FOOTER in tail,
            "present"
            if MYSQL_FOOTER in tail
            else "missing: the dump stopped before its end",
        )
    else:
        _sqlite_read(backup, counted, check)
    return counted.total


def _sqlite_read(backup: Backup, chunks: Any, check: Any) -> None:
    copy = backup.path.parent / f".dbr-partial-{os.getpid()}-{new_id()}.verify"
    try:
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.writelines(chunks)
        db = sqlite3.connect(copy)
        try:
            answer = [row[0] for row in db.execute("pragma integrity_check")]
        except sqlite3.DatabaseError as exc:
            answer = [str(exc)]
        finally:
            db.close()
        check("integrity_check", answer == ["ok"], "; ".join(answer[:5]))
    finally:
        copy.unlink(missing_ok=True)


class _Tally:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.total += len(chunk)
            yield chunk


def _major(backup: Backup) -> int:
    """The major version of the pg_dump that wrote the backup."""
    found = re.search(r"\)\s*(\d+)", backup.manifest.get("client_version") or "")
    return int(found.group(1)) if found else 0


def scratch_restore(
    backup: Backup, server: Target, *, stop: Stop | None = None
) -> dict[str, int]:
    """Restore into a new scratch database, count its rows, drop it whatever happens."""
    name = f"dbr_scratch_{new_id()}"
    if backup.dialect == "sqlite":
        path = backup.path.parent / f".dbr-partial-{os.getpid()}-{name}.sqlite"
        scratch = Target.from_url(f"sqlite:///{path}", name)
        try:
            loaders.load(scratch, backup, stop=stop)
            with scratch.engine().connect() as conn:
                return inspect.row_counts(conn, "sqlite")
        finally:
            scratch.dispose()
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    admin = server.engine().execution_options(isolation_level="AUTOCOMMIT")
    quoted = inspect.quote(backup.dialect, name)
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                f"create database {quoted}"
                + (" character set utf8mb4" if backup.dialect == "mysql" else "")
            )
        )
    scratch = Target.from_url(
        server.url.set(database=name).render_as_string(hide_password=False), name
    )
    try:
        counts = loaders.load(scratch, backup, stop=stop)
        if counts is not None:
            return counts
        with scratch.engine().connect() as conn:
            return inspect.row_counts(conn, backup.dialect)
    finally:
        scratch.dispose()
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    f"drop database if exists {quoted}"
                    + (" with (force)" if backup.dialect == "postgresql" else "")
                )
            )
        log.info("scratch database %s dropped", name)


def checksum_only(backup: Backup, stop: Stop | None = None) -> Verification:
    """Re-check a backup verified in full before: its file is still the same bytes."""
    clock = time.monotonic()
    result = Verification(backup.id, True, False)
    if not backup.path.is_file():
        result.ok = False
        result.checks.append(
            {"check": "file", "ok": False, "detail": f"{backup.path} is missing"}
        )
    else:
        actual = stream.sha256_of(backup.path, stop)
        result.ok = actual == backup.sha256
        result.checks.append(
            {
                "check": "sha256",
                "ok": result.ok,
                "detail": f"matches the manifest; full verification "
                f"{backup.verified_at:%Y-%m-%d %H:%M} UTC"
                if result.ok
                else f"{actual} differs from the manifest's {backup.sha256}",
            }
        )
    result.duration = time.monotonic() - clock
    return result
