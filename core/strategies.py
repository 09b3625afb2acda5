"""Strategies: turn `notify`, `downgrade:...` or `restore:...` into a rollback plan.

A strategy becomes a Plan through the engine that owns it: `notify` (an alert
only), `downgrade:N` / `downgrade:REV` (core.migrations), `restore:latest-verified`
/ `restore:latest` / `restore:ID` (core.backups). A rollback plan records a health
sample first (the executor snapshots the schema before and after), and afterwards
re-measures health until it is healthy for recovery_samples in a row or
recovery_deadline passes. The verdict, "recovered" or "still unhealthy"
("unconfirmed" when stopped first), is in the operation's result
(results.recovery); "still unhealthy" fails the operation's post-condition.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core import events as ev
from core.config import STRATEGY_RE
from core.errors import ConfigError, DbrError
from core.events import Severity
from core.executor import Outcome
from core.health.monitor import Monitor
from core.plans import Context, Plan, Postcondition, Step
from core.state import utcnow

if TYPE_CHECKING:
    from core.targets import Target
    from core.workspace import Workspace

log = logging.getLogger(__name__)

RECOVERED = "recovered"
STILL_UNHEALTHY = "still unhealthy"
UNCONFIRMED = "unconfirmed"  # stopped (SIGTERM, Ctrl-C) before recovery was proven


def parse_strategy(strategy: str) -> tuple[str, str]:
    if not STRATEGY_RE.match(strategy):
        raise ConfigError(
            f"unknown strategy {strategy!r}",
            hint="use notify, downgrade:N, downgrade:REV, "
            "restore:latest-verified, restore:latest or restore:ID",
        )
    kind, _, arg = strategy.partition(":")
    return kind, arg


def plan_strategy(ws: Workspace, target: Target | str, strategy: str) -> Plan:
    """The rollback plan a strategy makes for target, ready to preview or run."""
    target = ws.target(target) if isinstance(target, str) else target
    kind, arg = parse_strategy(strategy)
    if kind == "notify":
        return _notify_plan(target, strategy)
    if kind == "downgrade":
        if target.config.alembic is None:
            raise ConfigError(
                f"{strategy} needs {target.name}'s Alembic project",
                hint=f"set alembic in [targets.{target.name}]",
            )
        spec = f"-{arg}" if arg.isdigit() else arg
        plan = engine_function("core.migrations", "the migration engine", "plan")(
            target, spec, direction="downgrade", journal=ws.journal
        )
    else:
        backup_id = _backup_id(ws, target, arg)
        plan = engine_function("core.backups", "the backup engine", "plan_restore")(
            ws, backup_id, target=target.name
        )
    return _as_rollback(plan, target, strategy)


def _backup_id(ws: Workspace, target: Target, which: str) -> str:
    """The backup that restore:latest-verified, restore:latest or restore:ID names."""
    if which not in ("latest", "latest-verified"):
        return which
    backups = engine_function("core.backups", "the backup engine", "list_backups")(
        ws, target.name
    )
    complete = [b for b in backups if b.complete]  # newest first
    chosen = (
        [b for b in complete if b.verified] if which == "latest-verified" else complete
    )
    if not chosen:
        kind = "verified " if which == "latest-verified" else ""
        raise DbrError(
            f"{target.name} has no {kind}backup to restore",
            cause=f"{len(complete)} complete backup(s), none verified"
            if which == "latest-verified"
            else "the catalog is empty",
            hint=f"dbr backups verify ID, or dbr backups create {target.name}",
        )
    return chosen[0].id


def run_rollback(
    ws: Workspace,
    target: Target | str,
    strategy: str,
    *,
    trigger: str | None = None,
    fired_at: datetime | None = None,
    cancel: threading.Event | None = None,
    plan: Plan | None = None,
) -> Outcome:
    """Plan (unless given) and run a strategy; the journal records recovery or not."""
    target = ws.target(target) if isinstance(target, str) else target
    plan = plan or plan_strategy(ws, target, strategy)
    options = {
        "strategy": strategy,
        "trigger": trigger,
        "triggered_at": fired_at.isoformat() if fired_at else None,
    }
    return ws.executor.run(plan, target, confirmed=True, cancel=cancel, options=options)


def engine_function(module: str, words: str, function: str) -> Any:
    """A public function of another engine, or a clear error if this build lacks it."""
    try:
        engine = importlib.import_module(module)
    except ImportError:
        engine = None
    found = getattr(engine, function, None)
    if found is None:
        raise DbrError(
            f"this strategy needs {words}, which is not available",
            cause=f"{module}.{function} is missing from this build",
            hint="use the notify strategy, or install a complete dbr",
        )
    return found


def _notify_plan(target: Target, strategy: str) -> Plan:
    def notify(ctx: Context) -> dict[str, Any]:
        ctx.bus.emit(
            "rollback.notify",
            f"{target.name} needs a person: its health "
            "trigger fired and the strategy is to notify",
            severity=Severity.CRITICAL,
            target=target.name,
            operation_id=ctx.operation_id,
            data={"strategy": strategy},
        )
        return {"notified": True}

    step = Step(
        "notify",
        f"send an alert that asks a person to look at {target.name}",
        run=notify,
    )
    return Plan(
        kind="rollback.notify",
        target=target.name,
        title=f"notify the on-call about {target.name}",
        steps=[step],
        summary={"strategy": strategy},
    )


def _as_rollback(plan: Plan, target: Target, strategy: str) -> Plan:
    """An engine's plan framed as a rollback: snapshot first, recovery proven after."""
    health = target.config.health
    plan.summary = {"strategy": strategy, "engine_kind": plan.kind, **plan.summary}
    plan.kind = f"rollback.{strategy.split(':', 1)[0]}"
    plan.title = f"roll back {target.name} by {strategy}: {plan.title}"
    plan.snapshot = True  # the executor records the schema before and after
    plan.steps.insert(
        0,
        Step(
            "health before",
            "record a health sample before the rollback",
            run=_health_before,
        ),
    )
    plan.postconditions.append(
        Postcondition(
            f"health recovers: healthy in {health.recovery_samples} samples in a row "
            f"within {health.recovery_deadline:g} s",
            check=_recovery,
        )
    )
    return plan


def _health_before(ctx: Context) -> dict[str, Any]:
    monitor = Monitor(ctx.store, ctx.bus)
    try:
        before = monitor.sample(ctx.target)
    finally:
        monitor.close()
    return {
        "score": before.score,
        "healthy": before.healthy,
        "conclusive": before.conclusive,
        "failing": before.failing,
        "explanation": before.explanation,
    }


def _recovery(ctx: Context) -> tuple[bool, str]:
    """Sample until healthy recovery_samples times in a row, or the deadline passes."""
    health = ctx.target.config.health
    monitor = Monitor(ctx.store, ctx.bus)
    started = time.monotonic()
    streak = taken = 0
    sample = None
    try:
        while True:
            sample = monitor.sample(ctx.target)
            taken += 1
            streak = streak + 1 if sample.healthy else 0
            if streak >= health.recovery_samples:
                break
            if (
                time.monotonic() - started >= health.recovery_deadline
                or ctx.cancel.wait(health.interval)
            ):
                break
    finally:
        monitor.close()
    seconds = round(time.monotonic() - started, 3)
    recovered = streak >= health.recovery_samples
    stopped = not recovered and ctx.cancel.is_set()
    verdict = RECOVERED if recovered else UNCONFIRMED if stopped else STILL_UNHEALTHY
    ctx.results["recovery"] = {
        "verdict": verdict,
        "samples": taken,
        "seconds": seconds,
        "recovered_at": utcnow().isoformat() if recovered else None,
        "score": sample.score if sample else None,
        "failing": sample.failing if sample else [],
    }
    if recovered:
        detail = (
            f"recovered: healthy in {streak} samples in a row, score "
            f"{sample.score:g}, after {seconds:.1f} s"
        )
        ctx.bus.emit(
            ev.HEALTH_RECOVERED,
            f"{ctx.target.name} recovered after the rollback (score {sample.score:g})",
            target=ctx.target.name,
            operation_id=ctx.operation_id,
            data=ctx.results["recovery"],
        )
    elif stopped:
        why = sample.summary if sample else "no sample"
        detail = (
            f"recovery not confirmed: stopped after {seconds:.1f} s "
            f"({taken} samples), last: {why}"
        )
        ctx.log(detail, Severity.WARNING)
    else:
        why = sample.summary if sample else "no sample"
        detail = f"still unhealthy after {seconds:.1f} s ({taken} samples): {why}"
        ctx.bus.emit(
            ev.HEALTH_DEGRADED,
            f"{ctx.target.name} is still unhealthy after the rollback: {why}",
            severity=Severity.CRITICAL,
            target=ctx.target.name,
            operation_id=ctx.operation_id,
            data=ctx.results["recovery"],
        )
    return recovered, detail
