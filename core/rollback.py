"""Triggers and strategies: from a health state to a rollback plan, and recovery.

A trigger matches a *conclusive* sample when every condition it names holds (score
below its limit; any of its named checks failing). It fires once `consecutive`
matching samples follow one another since it last fired, and not within its
cooldown. An inconclusive sample breaks a streak: dbr never acts on what it could
not measure. Modes: suggest (alert and propose the plan), auto (run it), shadow
(record in the journal what would have happened, nothing else).

A due trigger's strategy becomes a plan in core.strategies, which this module
re-exports (plan_strategy, run_rollback) so that callers need one import.

Public API: plan_strategy(ws, target, strategy) -> Plan; run_rollback(ws, target,
strategy, trigger=, fired_at=, cancel=) -> Outcome; trigger_states(ws, target) ->
list[TriggerState]; evaluate(trigger, samples, last_fired) -> TriggerState;
fire(ws, target, state, sample, cancel=) acts on a due trigger as its mode says.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import events as ev
from core.config import TriggerConfig
from core.errors import ConfigError, DbrError
from core.events import Event, Severity
from core.executor import Outcome
from core.health.monitor import Sample, recent_samples
from core.state import utcnow
from core.strategies import (  # noqa: F401 - re-exported
    RECOVERED,
    STILL_UNHEALTHY,
    UNCONFIRMED,
    engine_function,
    parse_strategy,
    plan_strategy,
    run_rollback,
)

if TYPE_CHECKING:
    from core.targets import Target
    from core.workspace import Workspace

log = logging.getLogger(__name__)

TRIGGER_SHADOW = "trigger.shadow"  # journal only: what a shadow trigger would have done


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
        script = engine_function(
            "core.migrations", "the migration engine", "load_project"
        )(target).script
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
