"""Triggers and strategies: from a health state to a rollback plan, and recovery.

A trigger matches a *conclusive* sample when every condition it names holds (score
below its limit; any of its named checks failing). It fires once `consecutive`
matching samples follow one another since it last fired, and not within its
cooldown. An inconclusive sample breaks a streak: dbr never acts on what it could
not measure. Modes: suggest (alert and propose the plan), auto (run it), shadow
(record in the journal what would have happened, nothing else).

A strategy becomes a Plan through the engine that owns it: `notify` (an alert
only), `downgrade:N` / `downgrade:REV` (core.migrations), `restore:latest-verified`
/ `restore:latest` / `restore:ID` (core.backups). A rollback plan records a health
sample first (the executor snapshots the schema before and after), and afterwards
re-measures health until it is healthy for recovery_samples in a row or
recovery_deadline passes. The verdict, "recovered" or "still unhealthy"
("unconfirmed" when stopped first), is in the operation's result
(results.recovery); "still unhealthy" fails the operation's post-condition.

Public API: plan_strategy(ws, target, strategy) -> Plan; run_rollback(ws, target,
strategy, trigger=, fired_at=, cancel=) -> Outcome; trigger_states(ws, target) ->
list[TriggerState]; evaluate(trigger, samples, last_fired) -> TriggerState;
fire(ws, target, state, sample, cancel=) acts on a due trigger as its mode says.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import events as ev
from core.config import STRATEGY_RE, TriggerConfig
from core.errors import ConfigError, DbrError
from core.events import Event, Severity
from core.executor import Outcome
from core.health.monitor import Monitor, Sample, recent_samples
from core.plans import Context, Plan, Postcondition, Step
from core.state import utcnow

if TYPE_CHECKING:
    from core.targets import Target
    from core.workspace import Workspace

log = logging.getLogger(__name__)

TRIGGER_SHADOW = "trigger.shadow"  # journal only: what a shadow trigger would have done
RECOVERED = "recovered"
STILL_UNHEALTHY = "still unhealthy"
UNCONFIRMED = "unconfirmed"  # stopped (SIGTERM, Ctrl-C) before recovery was proven


# -- triggers ---------------------------------------------------------------------


@dataclass
class TriggerState:
    """How close one trigger is to firing, for screens and `dbr health`."""

    trigger: TriggerConfig
    streak: int
    last_fired: datetime | None
    cooling_until: datetime | None
    newest_conclusive: bool

    @property
    def due(self) -> bool:
        """Enough matching samples in a row, outside the cooldown: fire now."""
        return self.streak >= self.trigger.consecutive and self.cooling_until is None

    @property
    def condition(self) -> str:
        parts = []
        if self.trigger.score_below is not None:
            parts.append(f"below {self.trigger.score_below:g}")
        if self.trigger.checks_failing:
            parts.append(f"with {' or '.join(self.trigger.checks_failing)} failing")
        return " and ".join(parts)

    @property
    def description(self) -> str:
        """'2 of 3 samples below 60', plus cooldown or inconclusive notes."""
        shown = min(self.streak, self.trigger.consecutive)
        text = f"{shown} of {self.trigger.consecutive} samples {self.condition}"
        if self.cooling_until is not None:
            text += f"; in cooldown until {self.cooling_until:%H:%M:%S} UTC"
        if not self.newest_conclusive:
            text += "; the newest sample is inconclusive"
        return text

    def to_dict(self) -> dict[str, Any]:
        t = self.trigger
        return {
            "name": t.name,
            "strategy": t.strategy,
            "mode": t.mode,
            "score_below": t.score_below,
            "checks_failing": list(t.checks_failing),
            "consecutive": t.consecutive,
            "cooldown": t.cooldown,
            "streak": self.streak,
            "due": self.due,
            "last_fired": self.last_fired.isoformat() if self.last_fired else None,
            "cooling_until": (
                self.cooling_until.isoformat() if self.cooling_until else None
            ),
            "description": self.description,
        }


def matches(trigger: TriggerConfig, sample: Sample) -> bool:
    """Whether a conclusive sample meets every condition the trigger names."""
    if not sample.conclusive:
        return False
    if trigger.score_below is not None and not (
        sample.score is not None and sample.score < trigger.score_below
    ):
        return False
    if trigger.checks_failing:
        failing = set(sample.failing)
        if not failing.intersection(trigger.checks_failing):
            return False
    return True


def evaluate(
    trigger: TriggerConfig,
    samples: list[Sample],
    last_fired: datetime | None,
    now: datetime | None = None,
) -> TriggerState:
    """The trigger's state given samples newest first and when it last fired."""
    now = now or utcnow()
    streak = 0
    for sample in samples:
        if last_fired is not None and sample.at <= last_fired:
            break  # a streak that already fired does not fire twice
        if not matches(trigger, sample):
            break
        streak += 1
    cooling = None
    if last_fired is not None:
        until = last_fired + timedelta(seconds=trigger.cooldown)
        cooling = until if until > now else None
    conclusive = samples[0].conclusive if samples else True
    return TriggerState(trigger, streak, last_fired, cooling, conclusive)


def last_fired(ws: Workspace, target: str) -> dict[str, datetime]:
    """When each trigger of target last fired (alerts and shadow records)."""
    rows = ws.journal.events(
        target, kinds=(ev.TRIGGER_FIRED, TRIGGER_SHADOW), limit=500
    )
    fired: dict[str, datetime] = {}
    for row in rows:  # newest first
        name = (row.get("data") or {}).get("trigger")
        if name and name not in fired:
            fired[name] = datetime.fromisoformat(row["at"])
    return fired


def trigger_states(ws: Workspace, target: Target) -> list[TriggerState]:
    """Each configured trigger's state, from the samples kept in the state store."""
    triggers = target.config.triggers
    if not triggers:
        return []
    needed = max(t.consecutive for t in triggers)
    samples = recent_samples(ws.store, target.name, needed)
    fired = last_fired(ws, target.name)
    return [evaluate(t, samples, fired.get(t.name)) for t in triggers]


def check_trigger_names(target: Target, known: list[str]) -> None:
    """Refuse a trigger that names a check the target does not run."""
    for trigger in target.config.triggers:
        unknown = [n for n in trigger.checks_failing if n not in known]
        if unknown:
            raise ConfigError(
                f"trigger {trigger.name!r} of {target.name} names an unknown check "
                f"{unknown[0]!r}",
                cause=f"{target.name} runs: {', '.join(known)}",
                hint="fix checks_failing in dbr.toml",
            )


def fire(
    ws: Workspace,
    target: Target,
    state: TriggerState,
    sample: Sample,
    *,
    cancel: threading.Event | None = None,
) -> Outcome | None:
    """Act on a due trigger as its mode says; returns the rollback's outcome."""
    trigger = state.trigger
    now = utcnow()
    data = {
        "trigger": trigger.name,
        "strategy": trigger.strategy,
        "mode": trigger.mode,
        "state": state.description,
        "score": sample.score,
        "failing": sample.failing,
    }
    held = hold_reason(ws, target, trigger, sample, now)
    if held:
        data["held"] = held
    if trigger.mode == "shadow":
        ws.journal.record(
            Event(
                kind=TRIGGER_SHADOW,
                target=target.name,
                severity=Severity.INFO,
                at=now,
                message=f"shadow: trigger {trigger.name!r} would have run "
                f"{trigger.strategy} ({state.description})",
                data=data,
            )
        )
        return None
    if trigger.mode == "suggest":
        try:
            data["plan"] = plan_strategy(ws, target, trigger.strategy).title
        except DbrError as exc:
            data["plan_error"] = str(exc)
        ws.bus.emit(
            ev.TRIGGER_FIRED,
            f"trigger {trigger.name!r} fired "
            f"({state.description}); suggests {trigger.strategy}: dbr rollback "
            f"plan {target.name} --strategy {trigger.strategy}"
            + (f" (an auto trigger would be {held})" if held else ""),
            severity=Severity.WARNING,
            target=target.name,
            data=data,
            at=now,
        )
        return None
    if held:
        # Recorded as a firing, so the trigger's cooldown starts and the alert is
        # not repeated every sample; nothing is run.
        ws.bus.emit(
            ev.TRIGGER_FIRED,
            f"trigger {trigger.name!r} fired ({state.description}) and was "
            f"{held}; {trigger.strategy} was NOT run (see its plan: `dbr rollback "
            f"plan {target.name} --strategy {trigger.strategy}`)",
            severity=Severity.CRITICAL,
            target=target.name,
            data=data,
            at=now,
        )
        return None
    ws.bus.emit(
        ev.TRIGGER_FIRED,
        f"trigger {trigger.name!r} fired "
        f"({state.description}); running {trigger.strategy}",
        severity=Severity.CRITICAL,
        target=target.name,
        data=data,
        at=now,
    )
    try:
        return run_rollback(
            ws,
            target,
            trigger.strategy,
            trigger=trigger.name,
            fired_at=now,
            cancel=cancel,
        )
    except DbrError as exc:  # no plan, lock held: the alert says so, the watch goes on
        ws.bus.emit(
            ev.OPERATION_FAILED,
            f"automatic rollback of {target.name} by "
            f"{trigger.strategy} did not start: {exc}",
            severity=Severity.CRITICAL,
            target=target.name,
            data=data,
        )
        return None


# Operations that leave the database as it was: they do not hold a trigger back.
READ_ONLY_KINDS = ("backup.create", "backup.verify", "backup.prune", "backup.remove")


def hold_reason(
    ws: Workspace,
    target: Target,
    trigger: TriggerConfig,
    sample: Sample,
    now: datetime | None = None,
) -> str | None:
    """Why an automatic rollback must not act now, or None when it may.

    An operator's own work on the target (running now, or ended within the
    trigger's cooldown) explains a low score better than a bad release does, and
    acting on it would compound it. A downgrade of a database that is already
    below the project's heads can only destroy more.
    """
    now = now or utcnow()
    holder = ws.journal.lock_holder(target.name)
    if holder is not None and not holder.get("stale"):
        return (
            f"held: operation {holder['operation_id']} ({holder['kind']}) by "
            f"{holder['user']} is running on {target.name}"
        )
    for op in ws.journal.operations(target.name, limit=5):
        if op["kind"] in READ_ONLY_KINDS:
            continue
        if not op.get("finished_at"):
            break  # interrupted without a lock: its end is unknown
        ago = (now - datetime.fromisoformat(op["finished_at"])).total_seconds()
        if ago < trigger.cooldown:
            return (
                f"held: operation {op['id']} ({op['kind']}) by {op['user']} "
                f"ended {max(0, round(ago))} s ago, within the trigger's "
                f"cooldown of {trigger.cooldown:g} s"
            )
        break
    if parse_strategy(trigger.strategy)[0] == "downgrade":
        below = _below_heads(target, sample)
        if below:
            return f"held: {below}; a further downgrade can only destroy more"
    return None


def _below_heads(target: Target, sample: Sample) -> str | None:
    """'the database is at X, behind the project's heads Y' when it is so."""
    check = sample.check("alembic heads")
    if check is None or check.ok or check.skipped or target.config.alembic is None:
        return None
    from core.health.checks import project_heads

    try:
        heads = project_heads(target)
        script = _engine("core.migrations", "the migration engine", "load_project")(
            target
        ).script
        known = {rev.revision for rev in script.walk_revisions()}
    except Exception:
        log.debug("cannot read %s's Alembic project", target.name, exc_info=True)
        return None
    value = check.value if isinstance(check.value, str) else "none"
    at = {r.strip() for r in value.split(",") if r.strip() and r.strip() != "none"}
    if at == set(heads) or not at <= known:
        return None  # at the heads, or at a revision this project does not know
    return (
        f"{target.name} is at {', '.join(sorted(at)) or 'no revision'}, behind the "
        f"project's head{'s' if len(heads) > 1 else ''} {', '.join(sorted(heads))}"
    )


# -- strategies -------------------------------------------------------------------


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
        plan = _engine("core.migrations", "the migration engine", "plan")(
            target, spec, direction="downgrade", journal=ws.journal
        )
    else:
        backup_id = _backup_id(ws, target, arg)
        plan = _engine("core.backups", "the backup engine", "plan_restore")(
            ws, backup_id, target=target.name
        )
    return _as_rollback(plan, target, strategy)


def _backup_id(ws: Workspace, target: Target, which: str) -> str:
    """The backup that restore:latest-verified, restore:latest or restore:ID names."""
    if which not in ("latest", "latest-verified"):
        return which
    backups = _engine("core.backups", "the backup engine", "list_backups")(
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


def _engine(module: str, words: str, function: str) -> Any:
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
