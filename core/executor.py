"""The one executor that runs any plan: lock, safety backup, journal, steps, verify."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from core import events as ev
from core.errors import Cancelled, DbrError, NotConfirmed
from core.events import Bus, Severity
from core.journal import CANCELLED, FAILED, SUCCEEDED, Journal
from core.plans import Context, Plan, Step
from core.secrets import redact
from core.state import new_id
from core.targets import Target

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    operation_id: str
    status: str  # succeeded, failed, cancelled
    error: str | None = None
    failed_step: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    postconditions: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "status": self.status,
            "error": self.error,
            "failed_step": self.failed_step,
            "postconditions": self.postconditions,
            "report": self.report,
            "results": self.results,
        }


class Executor:
    def __init__(self, journal: Journal, bus: Bus) -> None:
        self.journal = journal
        self.bus = bus

    def run(
        self,
        plan: Plan,
        target: Target,
        *,
        confirmed: bool,
        safety_backup: bool = True,
        break_lock: bool = False,
        cancel: threading.Event | None = None,
        options: dict[str, Any] | None = None,
    ) -> Outcome:
        """Run a confirmed plan; raises Refused before anything runs, else returns."""
        if not confirmed:
            raise NotConfirmed(
                f"{plan.title}: not confirmed",
                hint="review the plan, then confirm (--yes)",
            )
        operation_id = new_id()
        self.journal.acquire_lock(
            plan.target, operation_id, plan.kind, break_stale=break_lock
        )
        try:
            return self._run(
                plan,
                target,
                operation_id,
                safety_backup,
                cancel or threading.Event(),
                options or {},
            )
        finally:
            self.journal.release_lock(plan.target, operation_id)

    def _run(
        self,
        plan: Plan,
        target: Target,
        operation_id: str,
        safety_backup: bool,
        cancel: threading.Event,
        options: dict[str, Any],
    ) -> Outcome:
        steps = list(plan.steps)
        take_safety = plan.safety_backup is not None and plan.destructive
        if take_safety and safety_backup:
            steps.insert(0, plan.safety_backup)
        options = {
            **options,
            "safety_backup": bool(take_safety and safety_backup),
            "safety_backup_declined": bool(take_safety and not safety_backup),
        }
        self.journal.begin(
            plan.kind,
            plan.target,
            plan.title,
            plan=plan.to_dict(),
            options=options,
            operation_id=operation_id,
        )
        ctx = Context(
            target=target,
            store=self.journal.store,
            journal=self.journal,
            bus=self.bus,
            operation_id=operation_id,
            cancel=cancel,
        )
        if plan.snapshot:
            self._snapshot(ctx, "before")
        self._emit(
            ctx,
            ev.OPERATION_STARTED,
            f"{plan.title} started",
            Severity.WARNING if plan.kind.startswith("rollback") else Severity.INFO,
            operation_kind=plan.kind,
            steps=[s.name for s in steps],
        )
        if options["safety_backup_declined"]:
            ctx.log("safety backup declined by the operator", Severity.WARNING)

        for position, step in enumerate(steps):
            if cancel.is_set():
                for later, rest in enumerate(steps[position:], start=position):
                    self.journal.step_skipped(operation_id, later, rest.name)
                return self._end(
                    ctx,
                    plan,
                    CANCELLED,
                    f"cancelled before step {position + 1}, {step.name}",
                )
            error = self._step(ctx, plan, position, len(steps), step)
            if error is not None:
                report = self._report(ctx, plan, step, error)
                for later, rest in enumerate(steps[position + 1 :], start=position + 1):
                    self.journal.step_skipped(operation_id, later, rest.name)
                # A step that stopped because it was asked to was cancelled.
                stopped = isinstance(error, Cancelled) and cancel.is_set()
                return self._end(
                    ctx,
                    plan,
                    CANCELLED if stopped else FAILED,
                    f"step {step.name!r} {'stopped' if stopped else 'failed'}: "
                    f"{_describe(error)}",
                    failed_step=step.name,
                    report=report,
                )

        checks = []
        for condition in plan.postconditions:
            try:
                ok, detail = condition.check(ctx)
            except Exception as exc:  # a check that cannot run has not passed
                ok, detail = False, _describe(exc)
            checks.append({"check": condition.description, "ok": ok, "detail": detail})
        failed = [c for c in checks if not c["ok"]]
        if failed:
            return self._end(
                ctx,
                plan,
                FAILED,
                "post-condition failed: "
                + "; ".join(f"{c['check']} ({c['detail']})" for c in failed),
                postconditions=checks,
            )
        return self._end(ctx, plan, SUCCEEDED, None, postconditions=checks)

    def _step(
        self, ctx: Context, plan: Plan, position: int, total: int, step: Step
    ) -> BaseException | None:
        ctx.step = step.name
        self.journal.heartbeat(ctx.target.name, ctx.operation_id)
        step_id = self.journal.step_started(
            ctx.operation_id, position, step.name, step.description
        )
        self._emit(
            ctx,
            ev.STEP_STARTED,
            step.description or step.name,
            step=step.name,
            position=position,
            total=total,
        )
        log.info("%s: step %d/%d %s", ctx.target.name, position + 1, total, step.name)
        try:
            detail = step.run(ctx) or {}
        except BaseException as exc:  # recorded, then re-raised if it is not ours
            self.journal.step_finished(step_id, FAILED, error=_describe(exc))
            self._emit(
                ctx,
                ev.STEP_FINISHED,
                f"{step.name} failed: {_describe(exc)}",
                Severity.WARNING,
                step=step.name,
                position=position,
                total=total,
                status=FAILED,
            )
            if not isinstance(exc, Exception):
                error = f"interrupted during {step.name}"
                self.journal.finish(ctx.operation_id, FAILED, error=error)
                # Whoever heard it start hears it end, before the process does.
                self._emit(
                    ctx,
                    ev.OPERATION_FAILED,
                    f"{plan.title} failed: {error}",
                    Severity.CRITICAL,
                    operation_kind=plan.kind,
                    status=FAILED,
                )
                raise
            return exc
        ctx.results[step.name] = detail
        self.journal.step_finished(step_id, SUCCEEDED, detail=detail)
        self._emit(
            ctx,
            ev.STEP_FINISHED,
            f"{step.name} done",
            step=step.name,
            position=position,
            total=total,
            status=SUCCEEDED,
        )
        return None

    def _report(
        self, ctx: Context, plan: Plan, step: Step, error: BaseException
    ) -> dict[str, Any]:
        if plan.explain_failure is None:
            return {}
        try:
            return plan.explain_failure(ctx, step, error)
        except Exception as exc:
            log.warning("could not explain the failure of %s: %s", step.name, exc)
            return {"explain_failure_error": _describe(exc)}

    def _end(
        self,
        ctx: Context,
        plan: Plan,
        status: str,
        error: str | None,
        *,
        failed_step: str | None = None,
        report: dict | None = None,
        postconditions: list | None = None,
    ) -> Outcome:
        outcome = Outcome(
            operation_id=ctx.operation_id,
            status=status,
            error=error,
            failed_step=failed_step,
            results=ctx.results,
            postconditions=postconditions or [],
            report=report or {},
        )
        if plan.snapshot:
            self._snapshot(ctx, "after")
        self.journal.finish(
            ctx.operation_id,
            status,
            error=error,
            result={
                k: v
                for k, v in outcome.to_dict().items()
                if k not in ("operation_id", "status", "error")
            },
        )
        kind, severity = {
            SUCCEEDED: (ev.OPERATION_SUCCEEDED, Severity.INFO),
            CANCELLED: (ev.OPERATION_CANCELLED, Severity.WARNING),
        }.get(status, (ev.OPERATION_FAILED, Severity.CRITICAL))
        message = f"{plan.title} {status}" + (f": {error}" if error else "")
        self._emit(
            ctx,
            kind,
            message,
            severity,
            operation_kind=plan.kind,
            status=status,
            report=report or {},
        )
        return outcome

    def _snapshot(self, ctx: Context, label: str) -> None:
        """Record the schema in the journal; a failure to read it is logged only."""
        from core import snapshots

        try:
            known = ctx.results.get("row_counts") if label == "after" else None
            snapshot = snapshots.take(ctx.target, known_rows=known)
            snapshots.record(
                ctx.store, snapshot, label=label, operation_id=ctx.operation_id
            )
        except Exception as exc:  # the operation matters more than its snapshot
            log.warning(
                "%s: no %s snapshot: %s", ctx.target.name, label, _describe(exc)
            )
            ctx.log(
                f"schema snapshot {label} not recorded: {_describe(exc)}",
                Severity.WARNING,
            )

    def _emit(
        self,
        ctx: Context,
        kind: str,
        message: str,
        severity: Severity = Severity.INFO,
        **data: Any,
    ) -> None:
        self.bus.emit(
            kind,
            message,
            severity=severity,
            target=ctx.target.name,
            operation_id=ctx.operation_id,
            data=data,
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, DbrError):
        return redact(str(error))
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return redact(f"{type(error).__name__}: {text}" if text else type(error).__name__)
