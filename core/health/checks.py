"""Health checks: one real round trip, then the built-in and custom checks per dialect.

Every check runs with a hard timeout enforced by the server where it can be
(PostgreSQL statement_timeout and lock_timeout, MariaDB max_statement_time and
lock_wait_timeout, MySQL max_execution_time) and by SQLite's progress handler. A
check that times out or errors has failed; nothing unmeasured is ever healthy.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from core.config import CheckConfig, HealthConfig
from core.health.limits import (
    CONNECTION_CODES,
    TIMEOUT_CODES,
    TimeLimit,
    describe,
    error_codes,
    is_timeout,
    savepoint,
    timeout_text,
)
from core.targets import CONNECT_TIMEOUT, Target

log = logging.getLogger(__name__)

OK = "ok"
FAILING = "failing"
TIMEOUT = "timeout"  # failing, and says nothing about the rest of the database
UNREACHABLE = "unreachable"  # the check could not run at all
# Not measured: the user dbr connects as may not run it (no privilege). That says
# nothing about the database's health, so the score leaves it out.
SKIPPED = "skipped"

# Limits of the built-in checks; each check can be switched off with
# [targets.NAME.health] disable = ["check name"].
REPLICATION_LAG_MAX = 30.0  # seconds
LONG_TRANSACTION_MAX = 300.0  # seconds
BLOCKED_FOR = 5.0  # seconds a session may wait on a lock before it counts
SATURATION_MAX = 0.9  # share of max_connections
THREADS_RUNNING_MAX = 64
PROJECT_HEADS_TTL = 30.0  # seconds the project's heads are cached between samples


@dataclass
class CheckResult:
    """What one check saw: ok, its value, and why it failed."""

    name: str
    status: str
    value: float | str | None = None
    weight: float = 1.0
    required: bool = False
    error: str | None = None
    detail: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def skipped(self) -> bool:
        """Neither passing nor failing: left out of the score."""
        return self.status == SKIPPED

    @property
    def ran(self) -> bool:
        """True when the check reached a verdict about the database itself."""
        return self.status in (OK, FAILING)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": None if self.skipped else self.ok,
            "status": self.status,
            "value": self.value,
            "weight": self.weight,
            "required": self.required,
            "error": self.error,
            "detail": self.detail,
            "duration": round(self.duration, 4),
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> CheckResult:
        return cls(
            name=row["name"],
            status=row["status"],
            value=row.get("value"),
            weight=row.get("weight", 1.0),
            required=row.get("required", False),
            error=row.get("error"),
            detail=row.get("detail", ""),
            duration=row.get("duration", 0.0),
        )


class CheckFailed(Exception):
    """A check's query answered, but not within its limits."""


class CheckSkipped(Exception):
    """The check cannot be measured with this user's privileges; args[0] says why."""


def connection_share(used: int, limit: int) -> tuple[float, str]:
    """Connections in use against the server's limit; fails above SATURATION_MAX."""
    share = round(used / limit, 3) if limit else 0.0
    detail = f"{used} of {limit} connections ({share:.0%})"
    if share > SATURATION_MAX:
        raise CheckFailed(detail, share)
    return share, detail


@dataclass(frozen=True)
class _Spec:
    name: str
    weight: float
    required: bool
    timeout: float
    run: Callable[[Connection], tuple[Any, str]]


class Prober:
    """Runs a target's checks on its own small connection pool, one sample at a time.

    The pool is not the target's shared engine: session timeouts set here must not
    leak into backups or migrations, and SQLite is opened read-only so that a
    missing file is reported instead of created.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.config: HealthConfig = target.config.health
        self._engine: Engine | None = None
        self._heads: tuple[float, frozenset[str]] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def names(self) -> list[str]:
        """Every check this target runs, built-in then custom."""
        return [s.name for s in self._specs()]

    def run(self) -> list[CheckResult]:
        """Run every check once; never raises for a database problem."""
        specs = self._specs()
        started = time.monotonic()
        try:
            conn = self.engine().connect()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is a verdict
            status, error = self._classify_connect(exc)
            first = _result(
                specs[0], status, error=error, duration=time.monotonic() - started
            )
            skipped = f"not run: {specs[0].name} failed"
            return [first] + [_result(s, status, error=skipped) for s in specs[1:]]
        results: list[CheckResult] = []
        try:
            for spec in specs:
                results.append(self._run_one(conn, spec))
                if results[-1].status == UNREACHABLE:
                    skipped = f"not run: the connection was lost during {spec.name}"
                    rest = specs[len(results) :]
                    results += [_result(s, UNREACHABLE, error=skipped) for s in rest]
                    break
        finally:
            try:
                conn.close()
            except Exception:  # the connection is already gone; nothing to return
                log.debug("closing a broken health connection failed", exc_info=True)
        return results

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine()
            return self._engine

    def _make_engine(self) -> Engine:
        target = self.target
        connect_timeout = max(1, min(CONNECT_TIMEOUT, math.ceil(self.config.timeout)))
        if target.dialect == "sqlite":
            path = target.sqlite_path

            def connect() -> sqlite3.Connection:
                # mode=ro: a missing file is an error here, never a new empty database.
                return sqlite3.connect(
                    f"file:{quote(str(path))}?mode=ro",
                    uri=True,
                    timeout=self.config.timeout,
                    check_same_thread=False,
                )

            return sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)
        args: dict[str, Any] = {"connect_timeout": connect_timeout}
        if target.dialect == "postgresql":
            args["application_name"] = "dbr-health"
        else:
            # A client-side deadline as well, for a server that stops answering.
            longest = max(
                [self.config.timeout, *(c.timeout for c in self.config.checks)]
            )
            args.update(
                charset="utf8mb4",
                read_timeout=math.ceil(longest) + 5,
                write_timeout=math.ceil(longest) + 5,
            )
        return sa.create_engine(
            target.url,
            connect_args=args,
            pool_size=1,
            max_overflow=2,
            pool_pre_ping=True,
            pool_timeout=5,
            pool_recycle=3600,
        )

    def _classify_connect(self, exc: Exception) -> tuple[str, str]:
        text = describe(exc)
        if self.target.dialect == "sqlite":
            # A file that is gone or unreadable is the database's own failure.
            return FAILING, f"cannot open {self.target.database}: {text}"
        return UNREACHABLE, f"cannot connect: {text}"

    def _run_one(self, conn: Connection, spec: _Spec) -> CheckResult:
        started = time.monotonic()
        try:
            with TimeLimit(conn, self.target.dialect, spec.timeout):
                value, detail = spec.run(conn)
        except CheckSkipped as exc:
            return _result(
                spec,
                SKIPPED,
                error=str(exc.args[0]),
                duration=time.monotonic() - started,
            )
        except CheckFailed as exc:
            value, detail = exc.args[1] if len(exc.args) > 1 else None, str(exc.args[0])
            return _result(
                spec,
                FAILING,
                value=value,
                detail=detail,
                duration=time.monotonic() - started,
            )
        except Exception as exc:  # noqa: BLE001 - an error fails the check
            status, error = self._classify(conn, exc, spec.timeout)
            return _result(
                spec, status, error=error, duration=time.monotonic() - started
            )
        return _result(
            spec, OK, value=value, detail=detail, duration=time.monotonic() - started
        )

    def _classify(
        self, conn: Connection, exc: Exception, timeout: float
    ) -> tuple[str, str]:
        codes = error_codes(exc)
        text = describe(exc)
        if codes & TIMEOUT_CODES or timeout_text(text):
            return TIMEOUT, f"no answer within {timeout:g} s ({text})"
        if getattr(exc, "connection_invalidated", False) or codes & CONNECTION_CODES:
            return UNREACHABLE, f"connection lost: {text}"
        return FAILING, text

    # -- which checks ----------------------------------------------------------

    def _specs(self) -> list[_Spec]:
        cfg = self.config
        t = cfg.timeout
        dialect = self.target.dialect
        built: list[_Spec] = [
            _Spec("round trip", 3.0, True, t, self._round_trip),
            _Spec("latency", 1.0, False, t, self._latency),
        ]
        if self.target.config.critical_tables:
            built.append(_Spec("critical tables", 2.0, False, t, self._tables))
        if self.target.config.alembic is not None:
            built.append(_Spec("alembic heads", 2.0, False, t, self._alembic_heads))
        if dialect == "postgresql":
            from core.health import postgresql as extra
        elif dialect == "mysql":
            from core.health import mysql as extra
        else:
            from core.health import sqlite as extra
        built += [
            _Spec(name, weight, False, t, run) for name, weight, run in extra.CHECKS
        ]
        built = [s for s in built if s.name not in cfg.disable]
        built += [
            _Spec(c.name, c.weight, c.required, c.timeout, _custom(c))
            for c in cfg.checks
        ]
        return built

    # -- common built-in checks ------------------------------------------------

    def _round_trip(self, conn: Connection) -> tuple[Any, str]:
        started = time.perf_counter()
        answer = conn.execute(sa.text("select 1")).scalar()
        elapsed = (time.perf_counter() - started) * 1000
        if answer != 1:
            raise CheckFailed(f"select 1 answered {answer!r}", None)
        return round(elapsed, 2), f"answered in {elapsed:.2f} ms"

    def _latency(self, conn: Connection) -> tuple[Any, str]:
        limit = self.config.latency_ms
        best = math.inf
        for _ in range(2):  # the better of two, so one scheduler hiccup is no alarm
            started = time.perf_counter()
            conn.execute(sa.text("select 1")).scalar()
            best = min(best, (time.perf_counter() - started) * 1000)
        value = round(best, 2)
        if best > limit:
            raise CheckFailed(f"{best:.2f} ms, limit {limit:g} ms", value)
        return value, f"{best:.2f} ms (limit {limit:g} ms)"

    def _tables(self, conn: Connection) -> tuple[Any, str]:
        quote = conn.dialect.identifier_preparer.quote
        unreadable = []
        tables = self.target.config.critical_tables
        for table in tables:
            name = ".".join(quote(part) for part in table.split("."))
            try:
                with savepoint(conn):
                    conn.execute(sa.text(f"select 1 from {name} limit 1")).all()
            except sa.exc.OperationalError as exc:
                if is_timeout(exc):
                    raise
                unreadable.append(f"{table} ({describe(exc)})")
            except sa.exc.DBAPIError as exc:
                unreadable.append(f"{table} ({describe(exc)})")
        readable = len(tables) - len(unreadable)
        if unreadable:
            raise CheckFailed(
                "unreadable: " + "; ".join(unreadable), f"{readable}/{len(tables)}"
            )
        return f"{readable}/{len(tables)}", f"all {len(tables)} readable"

    def _alembic_heads(self, conn: Connection) -> tuple[Any, str]:
        project = self._project_heads()
        try:
            with savepoint(conn):
                rows = conn.execute(sa.text("select version_num from alembic_version"))
                database = frozenset(r[0] for r in rows)
        except sa.exc.ProgrammingError as exc:
            raise CheckFailed(
                f"no alembic_version table ({describe(exc)})", None
            ) from None
        except sa.exc.OperationalError as exc:
            if is_timeout(exc) or "no such table" not in str(exc):
                raise
            raise CheckFailed("no alembic_version table", None) from None
        shown = ", ".join(sorted(database)) or "none"
        if database != project:
            raise CheckFailed(
                f"database at {shown}, project heads "
                f"{', '.join(sorted(project)) or 'none'}",
                shown,
            )
        return shown, f"at the project's head{'s' if len(project) > 1 else ''}"

    def _project_heads(self) -> frozenset[str]:
        now = time.monotonic()
        if self._heads is not None and now - self._heads[0] < PROJECT_HEADS_TTL:
            return self._heads[1]
        heads = project_heads(self.target)
        self._heads = (now, heads)
        return heads


def project_heads(target: Target) -> frozenset[str]:
    """The heads of the target's Alembic project, read from its script folder."""
    try:
        from core import migrations  # the migration engine, when it is installed
    except ImportError:
        migrations = None
    loader = getattr(migrations, "load_project", None)
    if loader is not None:
        return frozenset(loader(target).script.get_heads())
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    location = target.config.alembic
    if location is None:
        return frozenset()
    if location.is_dir():
        config = Config()
        config.set_main_option("script_location", str(location))
    else:
        config = Config(str(location))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _custom(check: CheckConfig) -> Callable[[Connection], tuple[Any, str]]:
    def run(conn: Connection) -> tuple[Any, str]:
        row = conn.execute(sa.text(check.sql)).first()
        if row is None or row[0] is None:
            raise CheckFailed("the query returned no value", None)
        try:
            value = float(row[0])
        except (TypeError, ValueError):
            raise CheckFailed(
                f"the query returned {row[0]!r}, not a number", str(row[0])
            ) from None
        value = int(value) if value.is_integer() else round(value, 4)
        limits = []
        if check.min is not None:
            limits.append(f"min {check.min:g}")
        if check.max is not None:
            limits.append(f"max {check.max:g}")
        bounds = ", ".join(limits) or "no limits"
        low = check.min is not None and value < check.min
        high = check.max is not None and value > check.max
        if low or high:
            raise CheckFailed(
                f"{value:g} is {'below' if low else 'above'} its limit ({bounds})",
                value,
            )
        return value, f"{value:g} ({bounds})"

    return run


def _result(
    spec: _Spec,
    status: str,
    *,
    value: Any = None,
    error: str | None = None,
    detail: str = "",
    duration: float = 0.0,
) -> CheckResult:
    return CheckResult(
        name=spec.name,
        status=status,
        value=value,
        weight=spec.weight,
        required=spec.required,
        error=error,
        detail=detail or (error or ""),
        duration=duration,
    )
