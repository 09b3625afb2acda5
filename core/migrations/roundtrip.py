"""The round-trip test: every revision upgraded, downgraded and upgraded again.

It runs in a scratch database that dbr creates (refusing one that exists, so it
never drops a database it did not make) and always drops afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from alembic.runtime.migration import MigrationStep, RevisionStep
from alembic.script import Script

from core import snapshots
from core.errors import DbrError
from core.journal import FAILED as JOURNAL_FAILED
from core.journal import SUCCEEDED, Journal
from core.migrations.history import applied_revisions, read_analysis
from core.migrations.project import Project, load_project
from core.migrations.scratch import copy_schema as copy_schema_into
from core.migrations.scratch import scratch_database, scratch_target
from core.secrets import redact
from core.targets import Target

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
OK, LEFTOVER, NOOP, FAILED, NOT_REACHED = (
    "ok",
    "leftover",
    "noop",
    "failed",
    "not reached",
)


@dataclass
class RevisionResult:
    revision: str
    message: str
    status: str = NOT_REACHED
    detail: str = ""
    leftovers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "message": self.message,
            "status": self.status,
            "detail": self.detail,
            "leftovers": self.leftovers,
        }


@dataclass
class RoundTrip:
    target: str
    scratch: str
    revisions: list[RevisionResult]
    dropped: bool = False
    copied_schema: bool = False

    @property
    def ok(self) -> bool:
        tested = [
            r
            for r in self.revisions
            if not (self.copied_schema and r.status == NOT_REACHED and r.detail)
        ]
        return bool(tested) and all(r.status == OK for r in tested)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for r in self.revisions:
            result[r.status] = result.get(r.status, 0) + 1
        return result

    def summary_lines(self) -> list[str]:
        counts = ", ".join(f"{n} {status}" for status, n in self.counts().items())
        return [
            (
                f"{self.target}: {len(self.revisions)} revisions round-tripped "
                f"in {self.scratch}: {counts}"
            ),
            f"scratch database {'dropped' if self.dropped else 'NOT DROPPED'}",
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "scratch": self.scratch,
            "ok": self.ok,
            "copied_schema": self.copied_schema,
            "counts": self.counts(),
            "scratch_dropped": self.dropped,
            "revisions": [r.to_dict() for r in self.revisions],
        }


def roundtrip(
    target: Target,
    scratch_url: str,
    progress: Progress | None = None,
    *,
    copy_schema: bool = False,
    journal: Journal | None = None,
) -> RoundTrip:
    """Round-trip every revision of target's project in a fresh scratch database.

    By default the walk goes up from an empty database. With copy_schema the
    scratch starts as a copy of the target's schema (no rows) at the target's
    heads, and the walk goes down from there: for projects whose first revision
    expects tables that existed before Alembic did. With a journal, the run is
    recorded as a `migration.roundtrip` operation (no lock: the target is only
    read).
    """
    project = load_project(target)
    scratch = scratch_target(target, scratch_url)
    order = topological(project)
    results = [RevisionResult(s.revision, (s.doc or "").strip()) for s in order]
    report = RoundTrip(
        target=target.name,
        scratch=scratch.display_url,
        revisions=results,
        copied_schema=copy_schema,
    )
    operation = (
        journal.begin(
            "migration.roundtrip",
            target.name,
            f"round trip of {target.name} in {scratch.display_url}",
            options={"scratch": scratch.display_url, "copy_schema": copy_schema},
        )
        if journal
        else None
    )
    try:
        _roundtrip(
            project,
            target,
            scratch,
            order,
            results,
            report,
            progress or (lambda *_: None),
        )
    except BaseException as exc:
        if journal and operation:
            journal.finish(
                operation, JOURNAL_FAILED, error=_describe(exc), result=report.to_dict()
            )
        raise
    if journal and operation:
        journal.finish(
            operation,
            SUCCEEDED if report.ok else JOURNAL_FAILED,
            error=None if report.ok else "; ".join(report.summary_lines()),
            result=report.to_dict(),
        )
    return report


def _roundtrip(
    project: Project,
    target: Target,
    scratch: Target,
    order: list[Script],
    results: list[RevisionResult],
    report: RoundTrip,
    progress: Progress,
) -> None:
    state = project.version_state() if report.copied_schema else None
    with scratch_database(scratch) as dropped:
        work = Project(scratch, project.location)
        if state is not None:
            copy_schema_into(target, scratch, state.table, state.heads)
            applied = applied_revisions(project.script, state.heads)
            for result in results:
                if result.revision not in applied:
                    result.detail = "not applied on the target, so not tested"
            downward = [
                (s, r)
                for s, r in zip(order, results, strict=True)
                if s.revision in applied
            ][::-1]
            _walk_down(work, scratch, downward, progress)
        else:
            _walk(work, scratch, order, results, progress)
        scratch.dispose()
    report.dropped = dropped[0]


def topological(project: Project) -> list[Script]:
    """Every revision after all it stands on (parents and depends_on)."""
    scripts = {s.revision: s for s in project.script.walk_revisions()}
    below = {
        rev: set(s._all_down_revisions) & set(scripts) for rev, s in scripts.items()
    }
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
        raise DbrError(
            "the revision graph has a cycle",
            cause=", ".join(sorted(set(scripts) - placed)),
        )
    return done


def _walk(
    work: Project,
    scratch: Target,
    order: list[Script],
    results: list[RevisionResult],
    progress: Progress,
) -> None:
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
                if result.leftovers
                else ""
            )
            if phase == "upgrade" and number == 0:
                result.detail += (
                    " (if the project starts from tables made before "
                    "Alembic, use copy_schema / --copy-schema)"
                )
            log.info("round trip stopped at %s: %s", script.revision, result.detail)
            return
    progress(len(order), len(order), "done")


def _walk_down(
    work: Project,
    scratch: Target,
    downward: list[tuple[Script, RevisionResult]],
    progress: Progress,
) -> None:
    """From the copied heads: downgrade, upgrade again (same schema?), downgrade."""
    for number, (script, result) in enumerate(downward):
        progress(number, len(downward), f"{script.revision}: {result.message}")
        up = MigrationStep.upgrade_from_script(work.script.revision_map, script)
        down = MigrationStep.downgrade_from_script(work.script.revision_map, script)
        phase = "downgrade"
        try:
            before = snapshots.take(scratch, counts=False)
            version_table = _run(work, down)
            after_down = snapshots.take(scratch, counts=False)
            phase = "upgrade after the downgrade"
            _run(work, up)
            again = snapshots.take(scratch, counts=False)
            phase = "second downgrade"
            _run(work, down)
        except Exception as exc:  # any failure of a script is the finding
            result.status = FAILED
            result.detail = f"{phase} failed: {_describe(exc)}"
            log.info("round trip stopped at %s: %s", script.revision, result.detail)
            return
        ignore = (version_table,)
        differs = snapshots.diff(before, again, rows=False, ignore=ignore)
        analysis = read_analysis(script.path)
        is_merge = len(script._versioned_down_revisions) > 1
        if differs.schema_changed:
            result.status = LEFTOVER
            result.leftovers = differs.lines()
            result.detail = (
                "downgrade then upgrade does not give the schema back: "
                + "; ".join(result.leftovers)
            )
        elif analysis.empty and not is_merge:
            result.status, result.detail = NOOP, "downgrade() is empty"
        else:
            changed = snapshots.diff(before, after_down, rows=False, ignore=ignore)
            result.status = OK
            result.detail = (
                "schema restored" if changed.schema_changed else "no schema change"
            )
    progress(len(downward), len(downward), "done")


def _judge(
    script: Script,
    result: RevisionResult,
    before: snapshots.Snapshot,
    after_up: snapshots.Snapshot,
    after_down: snapshots.Snapshot,
    version_table: str,
) -> None:
    """ok, leftover or noop, from the three schemas and the static reading."""
    ignore = (version_table,)
    left = snapshots.diff(before, after_down, rows=False, ignore=ignore)
    changed = snapshots.diff(before, after_up, rows=False, ignore=ignore)
    undone = snapshots.diff(after_up, after_down, rows=False, ignore=ignore)
    analysis = read_analysis(script.path)
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
            ""
            if changed.schema_changed
            else " (its upgrade changes data only, which stays changed)"
        )
    else:
        result.status = OK
        result.detail = (
            "schema restored" if changed.schema_changed else "no schema change"
        )


def _run(work: Project, step: RevisionStep) -> str:
    """Run one step in its own transaction; returns the version table's name."""
    seen: dict[str, str] = {}

    def steps(heads: tuple[str, ...], context: Any) -> Iterator[RevisionStep]:
        work.check_database(context)
        seen["table"] = context.version_table
        yield step

    with work.connect() as conn, conn.begin():
        work.run_env(steps, connection=conn)
    return seen.get("table", "alembic_version")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(
        f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    )
