"""Running migration steps: one transaction each, version table checked, failures told.

Each step runs the project's env.py with dbr's connection already inside a
transaction, so env.py's own begin_transaction() joins it: dbr commits only after
the version table holds exactly the heads the plan predicted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, RevisionStep

from core import snapshots
from core.errors import DbrError, Refused
from core.migrations.project import Project
from core.plans import Context, FailureReport, Step, StepRun
from core.snapshots import Snapshot

log = logging.getLogger(__name__)


class Memory:
    """What the steps of one plan remember for the failure report."""

    def __init__(self) -> None:
        self.before_step: Snapshot | None = None


def read_heads(context: MigrationContext) -> tuple[str, ...]:
    table = sa.table(
        context.version_table,
        sa.column("version_num"),
        schema=context.version_table_schema,
    )
    rows = context.connection.execute(sa.select(table.c.version_num)).scalars()
    return tuple(sorted(rows))


def _moved(target: str, expected: tuple[str, ...], found: tuple[str, ...]) -> DbrError:
    return DbrError(
        f"the database {target!r} is not where the plan expects",
        cause=f"planned from {', '.join(expected) or 'base'}, found "
        f"{', '.join(found) or 'base'}",
        hint="someone migrated it meanwhile; plan again",
    )


def step_runner(
    project: Project,
    alembic_step: RevisionStep,
    before: tuple[str, ...],
    after: tuple[str, ...],
    memory: Memory,
    *,
    own_transaction: bool = True,
) -> StepRun:
    """Run one revision's migration in its own transaction, then check heads.

    A revision that commits part of its work itself (autocommit_block) needs
    Alembic to hold the transaction, so dbr then leaves it to env.py.
    """
    target = project.target

    def run(ctx: Context) -> dict[str, Any]:
        if target.dialect == "mysql":
            # DDL commits at once here: keep the schema to tell what a failure left.
            memory.before_step = snapshots.take(target, counts=False)
        seen: dict[str, Any] = {}
        with project.connect() as conn:

            def steps(
                heads: tuple[str, ...], context: MigrationContext
            ) -> Iterator[RevisionStep]:
                project.check_database(context)
                if tuple(sorted(heads)) != before:
                    raise _moved(target.name, before, tuple(sorted(heads)))
                seen["own"] = context.connection is conn
                yield alembic_step
                seen["heads"] = read_heads(context)
                if seen["heads"] != after:
                    raise DbrError(
                        f"the version table of {target.name!r} is wrong after "
                        f"{alembic_step.revision.revision}",
                        cause=f"expected {', '.join(after) or 'no rows'}, found "
                        f"{', '.join(seen['heads']) or 'no rows'}",
                        hint="the step was rolled back where the dialect allows; "
                        "check the revision's scripts",
                    )

            if own_transaction:
                with conn.begin():
                    project.run_env(steps, connection=conn)
            else:
                project.run_env(steps, connection=conn)
        if "heads" not in seen:
            raise DbrError(
                f"env.py of {target.name!r} ran no migration",
                hint="check that env.py calls context.run_migrations()",
            )
        return {
            "revision": alembic_step.revision.revision,
            "heads": list(seen["heads"]),
            "env_used_dbr_connection": seen["own"],
        }

    return run


def trial_runner(
    project: Project,
    route_steps: list[RevisionStep],
    start: tuple[str, ...],
    end: tuple[str, ...],
) -> StepRun:
    """The whole route inside one transaction that is always rolled back."""
    target = project.target

    def run(ctx: Context) -> dict[str, Any]:
        seen: dict[str, Any] = {"ran": 0}
        with project.connect() as conn:

            def steps(
                heads: tuple[str, ...], context: MigrationContext
            ) -> Iterator[RevisionStep]:
                if context.connection is not conn:
                    raise Refused(
                        f"cannot trial a downgrade of {target.name!r}",
                        cause="its env.py opens its own connection instead of "
                        "config.attributes['connection'], so dbr cannot roll back",
                        hint="let env.py use config.attributes['connection'] "
                        "when it is set",
                    )
                if tuple(sorted(heads)) != start:
                    raise _moved(target.name, start, tuple(sorted(heads)))
                for number, step in enumerate(route_steps):
                    ctx.progress(number, len(route_steps), f"trial: {step.short_log}")
                    yield step
                    seen["ran"] = number + 1
                seen["heads"] = read_heads(context)

            transaction = conn.begin()
            try:
                project.run_env(steps, connection=conn)
            finally:
                transaction.rollback()
        reached = seen.get("heads")
        if reached != end:
            raise DbrError(
                f"the trial of {target.name!r} did not reach the plan's end",
                cause=f"expected {', '.join(end) or 'no rows'}, reached "
                f"{', '.join(reached or ()) or 'no rows'}",
            )
        return {
            "revisions_run": seen["ran"],
            "heads_reached": list(reached),
            "rolled_back": True,
        }

    return run


def explain(project: Project, memory: Memory) -> FailureReport:
    """The failure report: where the database is now and what the step left."""
    target = project.target

    def report(ctx: Context, step: Step, error: BaseException) -> dict[str, Any]:
        result: dict[str, Any] = {
            "failed_step": step.name,
            "failed_revision": step.detail.get("revision"),
        }
        try:
            heads = sorted(project.version_state().heads)
            result["database_at"] = ", ".join(heads) or "base (no revision)"
        except DbrError as exc:
            result["database_at"] = f"unknown ({exc.title})"
        backup = ctx.results.get("safety_backup_id")
        if backup:
            result["safety_backup"] = backup
        back = (
            f"; or restore the safety backup: dbr backups restore {backup}"
            if backup
            else ""
        )
        if target.dialect != "mysql":
            result["failed_step_effect"] = (
                "rolled back: nothing of the failed step remains"
            )
            result["what_to_do"] = (
                f"the database is at {result['database_at']}: fix "
                "the failing revision and run the plan again" + back
            )
            return result
        result["what_to_do"] = (
            "the schema is part-way through the failed step while the version table "
            "still names its revision: finish or undo the committed changes by hand, "
            "then set the version table (alembic stamp)" + back
        )
        if memory.before_step is None:
            result["failed_step_effect"] = "unknown (no schema kept before the step)"
            return result
        try:
            left = snapshots.diff(
                memory.before_step, snapshots.take(target, counts=False), rows=False
            )
        except DbrError as exc:
            result["failed_step_effect"] = f"unknown ({exc.title})"
            return result
        changes = left.lines()
        result["committed_by_failed_step"] = changes or ["nothing"]
        result["failed_step_effect"] = (
            f"MySQL/MariaDB committed {len(changes)} change(s) before the failure: "
            + "; ".join(changes)
            if changes
            else "no schema change was committed before the failure"
        )
        return result

    return report
