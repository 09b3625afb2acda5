"""MySQL and MariaDB health checks: threads running, replication, connections."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.health.checks import (
    REPLICATION_LAG_MAX,
    THREADS_RUNNING_MAX,
    CheckFailed,
    CheckSkipped,
    connection_share,
)

# ER_SPECIFIC_ACCESS_DENIED_ERROR: the statement needs a privilege the user lacks.
ACCESS_DENIED = 1227


def _code(exc: sa.exc.DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", None)
    return args[0] if args and isinstance(args[0], int) else None


def _status(conn: Connection, name: str) -> int:
    row = conn.exec_driver_sql(f"show global status like '{name}'").first()
    return int(row[1]) if row else 0


def threads_running(conn: Connection) -> tuple[Any, str]:
    running = _status(conn, "Threads_running")
    if running > THREADS_RUNNING_MAX:
        raise CheckFailed(
            f"{running} threads running (limit {THREADS_RUNNING_MAX})", running
        )
    return running, f"{running} (limit {THREADS_RUNNING_MAX})"


def replication_lag(conn: Connection) -> tuple[Any, str]:
    try:
        try:
            with conn.begin_nested():
                row = conn.exec_driver_sql("show replica status").mappings().first()
        except sa.exc.ProgrammingError as exc:
            if _code(exc) == ACCESS_DENIED:
                raise
            # Servers older than MariaDB 10.5 / MySQL 8.0.22 know only this name.
            row = conn.exec_driver_sql("show slave status").mappings().first()
    except sa.exc.DBAPIError as exc:
        if _code(exc) != ACCESS_DENIED:
            raise
        raise CheckSkipped(
            "not measured: needs REPLICATION CLIENT/SLAVE MONITOR "
            "(the user dbr connects as may not read replica status)"
        ) from None
    if row is None:
        return 0, "not a replica"
    lag = row.get("Seconds_Behind_Master", row.get("Seconds_Behind_Source"))
    if lag is None:
        raise CheckFailed("replication is not running", None)
    if lag > REPLICATION_LAG_MAX:
        raise CheckFailed(f"{lag} s behind (limit {REPLICATION_LAG_MAX:g} s)", lag)
    return lag, f"{lag} s (limit {REPLICATION_LAG_MAX:g} s)"


def connections(conn: Connection) -> tuple[Any, str]:
    used = _status(conn, "Threads_connected")
    limit = int(conn.exec_driver_sql("select @@max_connections").scalar() or 0)
    return connection_share(used, limit)


CHECKS = [
    ("threads running", 1.0, threads_running),
    ("replication lag", 1.0, replication_lag),
    ("connections", 1.0, connections),
]
