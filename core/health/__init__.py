"""Health: checks, an explained score, and the samples kept in the state store.

Public API (the CLI, the console and `dbr watch` use only these):

    sample(ws, target, *, monitor=None, keep=True) -> Sample
        Measure a target once (name or Target), keep the sample in the state store
        (bounded by [targets.NAME.health] keep_samples) and emit health.sampled.
        Never raises for a database problem: a server that cannot be reached gives
        an inconclusive sample. Pass a Monitor to reuse its connections when
        sampling repeatedly.
    Sample: .target .at .score (None when inconclusive) .threshold .healthy
        .conclusive .checks (list of CheckResult) .explanation (lines such as
        "-30 orders in the last hour (required): 0 is below its limit (min 1)")
        .lowered_by (dicts: check, points, value, status, required, detail)
        .failing (names) .summary (one line) .to_dict() (JSON-ready)
    CheckResult: .name .ok .status ("ok", "failing", "timeout", "unreachable",
        "skipped": not measured for want of a privilege, left out of the score;
        its to_dict() has ok None and the reason in error) .skipped .value .weight .required .error .detail .duration .to_dict()
    recent_samples(ws, target, limit=20) -> list[Sample], newest first.
    trigger_states(ws, target) -> list[TriggerState]: per configured trigger, how
        close it is to firing, e.g. "2 of 3 samples below 60", whether it is in
        cooldown, and its mode and strategy (see core.rollback).
    check_names(ws, target) -> list[str]: the checks the target runs.
    Monitor(store, bus): keeps one connection pool per target; .sample(target),
        .close().
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.health.checks import CheckResult, Prober
from core.health.monitor import Monitor, Sample
from core.health.monitor import recent_samples as _recent
from core.targets import Target

if TYPE_CHECKING:
    from core.rollback import TriggerState
    from core.workspace import Workspace

__all__ = [
    "CheckResult",
    "Monitor",
    "Sample",
    "check_names",
    "recent_samples",
    "sample",
    "trigger_states",
]


def _target(ws: Workspace, target: str | Target) -> Target:
    return ws.target(target) if isinstance(target, str) else target


def sample(
    ws: Workspace,
    target: str | Target,
    *,
    monitor: Monitor | None = None,
    keep: bool = True,
) -> Sample:
    resolved = _target(ws, target)
    if monitor is not None:
        return monitor.sample(resolved, keep=keep)
    own = Monitor(ws.store, ws.bus)
    try:
        return own.sample(resolved, keep=keep)
    finally:
        own.close()


def recent_samples(
    ws: Workspace, target: str | Target, limit: int = 20
) -> list[Sample]:
    return _recent(ws.store, _target(ws, target).name, limit)


def trigger_states(ws: Workspace, target: str | Target) -> list[TriggerState]:
    from core.rollback import trigger_states as states

    return states(ws, _target(ws, target))


def check_names(ws: Workspace, target: str | Target) -> list[str]:
    return Prober(_target(ws, target)).names()
