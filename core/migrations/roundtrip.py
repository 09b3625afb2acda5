"""The round-trip test: every revision upgraded, downgraded and upgraded again.

It runs in a scratch database that dbr creates (refusing one that exists, so it
never drops a database it did not make) and always drops afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationStep, RevisionStep
from alembic.script import Script

from core import snapshots
from core.errors import ConfigError, DbrError, Refused
from core.migrations.history import _analysis
from core.migrations.project import Project, load_project
from core.secrets import redact
from core.targets import Target, make_engine

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
OK, LEFTOVER, NOOP, FAILED, NOT_REACHED = (
    "ok", "leftover", "noop", "failed", "not reached")


@dataclass
class RevisionResult:
    revision: str
    message: str
    status: str = NOT_REACHED
    detail: str = ""
    leftovers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "message": self.message,
                "status": self.status, "detail": self.detail,
                "leftovers": self.leftovers}


@dataclass
class RoundTrip:
    target: str
    scratch: str
    revisions: list[RevisionResult]
    dropped: bool = False

    @property
    def ok(self) -> bool:
        return all(r.status == OK for r in self.revisions)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for r in self.revisions:
            result[r.status] = result.get(r.status, 0) + 1
        return result

    def summary_lines(self) -> list[str]:
        counts = ", ".join(f"{n} {status}" for status, n in self.counts().items())
        return [(f"{self.target}: {len(self.revisions)} revisions round-tripped "
                 f"in {self.scratch}: {counts}"),
                f"scratch database {'dropped' if self.dropped else 'NOT DROPPED'}"]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "scratch": self.scratch, "ok": self.ok,
                "counts": self.counts(), "scratch_dropped": self.dropped,
                "revisions": [r.to_dict() for r in self.revisions]}


def roundtrip(target: Target, scratch_url: str,
              progress: Progress | None = None) -> RoundTrip:
    """Round-trip every revision of target's project in a fresh scratch database."""
    project = load_project(target)
    scratch = _scratch_target(target, scratch_url)
    order = topological(project)
    results = [RevisionResult(s.revision, (s.doc or "").strip()) for s in order]
    report = RoundTrip(target=target.name, scratch=scratch.display_url,
                       revisions=results)
    with _scratch_database(scratch) as dropped:
        work = Project(scratch, project.location)
        _walk(work, scratch, order, results, progress or (lambda *_: None))
        scratch.dispose()
    report.dropped = dropped[0]
    return report


def topological(project: Project) -> list[Script]:
    """Every revision after all it stands on (parents and depends_on)."""
    scripts = {s.revision: s for s in project.script.walk_revisions()}
    below = {rev: set(s._all_down_revisions) & set(scripts)
             for rev, s in scripts.items()}
    done: list[Script] = []
    placed: set[str] = set()
    ready = sorted(rev for rev, parents in below.items() if not parents)
    while ready:
        rev = ready.pop(0)
        done.append(scripts[rev])
        placed.add(rev)
        for child in sorted(scripts):
            if child not in placed and child not in ready and below[child] <= placed:
                ready.append(child)
    if len(done) != len(scripts):
        raise DbrError("the revision graph has a cycle",
                       cause=", ".join(sorted(set(scripts) - placed)))
    return done


def _walk(work: Project, scratch: Target, order: list[Script],
          results: list[RevisionResult], progress: Progress) -> None:
    version_table = "alembic_version"
    for number, (script, result) in enumerate(zip(order, results, strict=True)):
        progress(number, len(order), f"{script.revision}: {result.message}")
        up = MigrationStep.upgrade_from_script(work.script.revision_map, script)
        down = MigrationStep.downgrade_from_script(work.script.revision_map, script)
        before = snapshots.take(scratch, counts=False)
        phase = "upgrade"
        try:
            version_table = _run(work, up)
            after_up = snapshots.take(scratch, counts=False)
            phase = "downgrade"
            _run(work, down)
            after_down = snapshots.take(scratch, counts=False)
            _judge(script, result, before, after_up, after_down, version_table)
            phase = "upgrade again"
            _run(work, up)
        except Exception as exc:  # any failure of a script is the finding
            result.status = FAILED
            result.detail = f"{phase} failed: {_describe(exc)}" + (
                f" (left behind: {'; '.join(result.leftovers)})"
                if result.leftovers else "")
            log.info("round trip stopped at %s: %s", script.revision, result.detail)
            return
    progress(len(order), len(order), "done")


def _judge(script: Script, result: RevisionResult, before: snapshots.Snapshot,
           after_up: snapshots.Snapshot, after_down: snapshots.Snapshot,
           version_table: str) -> None:
    """ok, leftover or noop, from the three schemas and the static reading."""
    ignore = (version_table,)
    left = snapshots.diff(before, after_down, rows=False, ignore=ignore)
    changed = snapshots.diff(before, after_up, rows=False, ignore=ignore)
    undone = snapshots.diff(after_up, after_down, rows=False, ignore=ignore)
    analysis = _analysis(script.path)
    is_merge = len(script._versioned_down_revisions) > 1
    if left.schema_changed and not undone.schema_changed:
        result.status, result.detail = NOOP, "the downgrade changed nothing"
        result.leftovers = left.lines()
    elif left.schema_changed:
        result.status = LEFTOVER
        result.leftovers = left.lines()
        result.detail = "left behind: " + "; ".join(result.leftovers)
    elif analysis.empty and not is_merge:
        result.status = NOOP
        result.detail = "downgrade() is empty" + (
            "" if changed.schema_changed else
            " (its upgrade changes data only, which stays changed)")
    else:
        result.status = OK
        result.detail = ("schema restored" if changed.schema_changed
                         else "no schema change")


def _run(work: Project, step: RevisionStep) -> str:
    """Run one step in its own transaction; returns the version table's name."""
    seen: dict[str, str] = {}

    def steps(heads: tuple[str, ...], context: Any) -> Iterator[RevisionStep]:
        seen["table"] = context.version_table
        yield step

    with work.connect() as conn, conn.begin():
        work.run_env(steps, connection=conn)
    return seen.get("table", "alembic_version")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(f"{type(exc).__name__}: {text.splitlines()[0]}" if text
                  else type(exc).__name__)


def _scratch_target(target: Target, url: str) -> Target:
    scratch = Target.from_url(url, name=f"{target.name}-scratch")
    if scratch.dialect != target.dialect:
        raise ConfigError(f"the scratch database is {scratch.dialect}, the target "
                          f"{target.dialect}",
                          hint="a round trip proves something only on the target's "
                          "own kind of database")
    same = (scratch.url.host, scratch.url.port, scratch.database) == (
        target.url.host, target.url.port, target.database)
    if same or not scratch.database:
        raise Refused("the scratch URL must name a new database, not the target's",
                      cause=f"it names {scratch.display_url}",
                      hint="give a database name dbr may create and drop")
    config = replace(scratch.config, alembic=target.config.alembic)
    return Target(config)


@contextmanager
def _scratch_database(scratch: Target) -> Iterator[list[bool]]:
    """Create the scratch database, refusing one that exists; always drop it."""
    dropped = [False]
    _create(scratch)
    try:
        yield dropped
    finally:
        scratch.dispose()
        try:
            _drop(scratch)
            dropped[0] = True
        except Exception as exc:  # reported in the result, never hides the cause
            log.error("could not drop the scratch database %s: %s",
                      scratch.display_url, _describe(exc))


def _admin(scratch: Target) -> sa.Engine:
    url = scratch.url
    server = "postgres" if scratch.dialect == "postgresql" else None
    # URL.set() ignores None, so the server-level URL is built afresh.
    admin = sa.engine.URL.create(url.drivername, url.username, url.password,
                                 url.host, url.port, server, url.query)
    engine = make_engine(admin, scratch.dialect)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _create(scratch: Target) -> None:
    name = scratch.database
    if scratch.dialect == "sqlite":
        path = Path(name)
        if path.exists():
            raise Refused(f"the scratch database {path} already exists",
                          hint="dbr drops only databases it creates: give a new path")
        path.parent.mkdir(parents=True, exist_ok=True)
        sa.create_engine(scratch.url).dispose()
        return
    engine = _admin(scratch)
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        with engine.connect() as conn:
            if scratch.dialect == "postgresql":
                exists = conn.execute(sa.text(
                    "select 1 from pg_database where datname = :n"), {"n": name})
            else:
                exists = conn.execute(sa.text(
                    "select 1 from information_schema.schemata where schema_name = :n"),
                    {"n": name})
            if exists.first() is not None:
                raise Refused(f"the scratch database {name!r} already exists",
                              hint="dbr drops only databases it creates: give a new "
                              "name")
            conn.exec_driver_sql(f"create database {quoted}")
    except sa.exc.DBAPIError as exc:
        raise DbrError(f"cannot create the scratch database {name!r}",
                       cause=_describe(exc.orig or exc),
                       hint="the scratch URL's user needs the right to create "
                       "databases") from None
    finally:
        engine.dispose()


def _drop(scratch: Target) -> None:
    if scratch.dialect == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(scratch.database + suffix).unlink(missing_ok=True)
        return
    engine = _admin(scratch)
    quoted = engine.dialect.identifier_preparer.quote(scratch.database)
    force = " with (force)" if scratch.dialect == "postgresql" else ""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"drop database if exists {quoted}{force}")
    finally:
        engine.dispose()
