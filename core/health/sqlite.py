"""SQLite's health check: the file's own structure, by quick_check."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from core.health.checks import CheckFailed


def quick_check(conn: Connection) -> tuple[Any, str]:
    rows = [r[0] for r in conn.exec_driver_sql("pragma quick_check").all()]
    if rows != ["ok"]:
        problems = len(rows)
        raise CheckFailed(
            f"{problems} problem(s), first: {rows[0] if rows else '?'}", problems
        )
    return "ok", "the file's structure is sound"


CHECKS = [("quick_check", 2.0, quick_check)]
