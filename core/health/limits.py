"""Hard time limits around health checks, and telling a timeout from a failure."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

from sqlalchemy.engine import Connection

from core.secrets import redact

log = logging.getLogger(__name__)

TIMEOUT_CODES = {
    "57014",  # PostgreSQL query_canceled (statement_timeout)
    "55P03",  # PostgreSQL lock_not_available (lock_timeout)
    1205,  # MySQL lock wait timeout
    1969,  # MariaDB max_statement_time exceeded
    3024,  # MySQL max_execution_time exceeded
}
CONNECTION_CODES = {2003, 2006, 2013, 2055}  # MySQL: server gone, lost, refused


class TimeLimit:
    """A server-enforced time limit around one check.

    The limits are session settings of the prober's own connections, set only when
    a check needs a different one (the connection remembers what it has), so a
    sample costs few round trips. Checks share one read transaction; a failed
    check rolls it back, and the pool rolls back what is left on return.
    """

    def __init__(self, conn: Connection, dialect: str, seconds: float) -> None:
        self.conn = conn
        self.dialect = dialect
        self.seconds = seconds
        self.ms = max(1, int(seconds * 1000))

    def __enter__(self) -> None:
        conn = self.conn
        if self.dialect == "sqlite":
            raw = conn.connection.driver_connection
            raw.execute(f"pragma busy_timeout = {self.ms}")
            stop_at = time.monotonic() + self.seconds
            raw.set_progress_handler(lambda: int(time.monotonic() > stop_at), 1000)
            return
        info = conn.connection.info
        if info.get("dbr_timeout_ms") == self.ms:
            return
        if conn.in_transaction():
            conn.rollback()
        if self.dialect == "postgresql":
            conn.exec_driver_sql(
                f"set statement_timeout = {self.ms}; set lock_timeout = {self.ms}"
            )
        else:
            wait = max(1, math.ceil(self.seconds))
            limit = (
                f"max_statement_time = {self.seconds:.3f}"
                if getattr(conn.dialect, "is_mariadb", False)
                else f"max_execution_time = {self.ms}"
            )
            conn.exec_driver_sql(
                f"set session {limit}, lock_wait_timeout = {wait}, "
                f"innodb_lock_wait_timeout = {wait}"
            )
        conn.commit()  # a SET inside a rolled-back transaction would be undone
        info["dbr_timeout_ms"] = self.ms

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            if self.dialect == "sqlite":
                self.conn.connection.driver_connection.set_progress_handler(None, 0)
            if kind is not None and not self.conn.invalidated:
                self.conn.rollback()
        except Exception:  # the connection broke with the check; the check says so
            log.debug("resetting a health connection failed", exc_info=True)


def savepoint(conn: Connection) -> Any:
    """A savepoint where an error would abort the whole transaction (not SQLite)."""
    if conn.dialect.name == "sqlite":
        return contextlib.nullcontext()
    return conn.begin_nested()


def error_codes(exc: Exception) -> set[Any]:
    """The driver's codes for an error: PostgreSQL's SQLSTATE, MySQL's errno too.

    PyMySQL gives a SQLSTATE as well (often the generic HY000), so both count.
    """
    orig = getattr(exc, "orig", exc)
    codes = {getattr(orig, "sqlstate", None)}
    if getattr(orig, "args", None):
        codes.add(orig.args[0])
    codes.discard(None)
    return codes


def is_timeout(exc: Exception) -> bool:
    return bool(error_codes(exc) & TIMEOUT_CODES) or timeout_text(str(exc))


def timeout_text(text: str) -> bool:
    """SQLite's words for a query stopped by its deadline or a lock it waited on."""
    text = text.lower()
    return "interrupted" in text or "database is locked" in text


def describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return redact(f"{type(orig).__name__}: {text}" if text else type(orig).__name__)
