"""Sampling: run a target's checks under a deadline, score them, keep the sample."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import events as ev
from core.events import Bus
from core.health.checks import UNREACHABLE, CheckResult, Prober
from core.health.score import compute
from core.state import Store, health_samples, utcnow
from core.targets import CONNECT_TIMEOUT, Target

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One measurement of a target's health."""

    target: str
    at: datetime
    score: float | None
    threshold: float
    healthy: bool
    conclusive: bool
    checks: list[CheckResult]
    explanation: list[str] = field(default_factory=list)
    lowered_by: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def failing(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok and not c.skipped]

    @property
    def summary(self) -> str:
        """One line: 'score 62 (threshold 80), unhealthy: -30 orders ...'."""
        if not self.conclusive:
            return f"inconclusive: {self.explanation[0].removeprefix('inconclusive: ')}"
        state = "healthy" if self.healthy else "UNHEALTHY"
        line = f"score {self.score:g} (threshold {self.threshold:g}), {state}"
        if self.lowered_by:
            line += "; " + "; ".join(self.explanation[:3])
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "at": self.at.isoformat(),
            "score": self.score,
            "threshold": self.threshold,
            "healthy": self.healthy,
            "conclusive": self.conclusive,
            "checks": [c.to_dict() for c in self.checks],
            "explanation": self.explanation,
            "lowered_by": self.lowered_by,
        }


class Monitor:
    """Samples targets, keeping one Prober (and its connection pool) per target."""

    def __init__(self, store: Store | None, bus: Bus | None = None) -> None:
        self.store = store
        self.bus = bus
        self._probers: dict[str, Prober] = {}
        self._lock = threading.Lock()

    def prober(self, target: Target) -> Prober:
        with self._lock:
            if target.name not in self._probers:
                self._probers[target.name] = Prober(target)
            return self._probers[target.name]

    def sample(
        self, target: Target, *, keep: bool = True, guarded: bool = True
    ) -> Sample:
        """Measure once.

        guarded: run the probe in a thread of its own and give up on it after the
        deadline (an inconclusive sample). A caller with its own watchdog, such as
        `dbr watch`, passes False and uses unanswered() for a probe that hangs.
        """
        prober = self.prober(target)
        results = (
            _within_deadline(prober, deadline(target)) if guarded else prober.run()
        )
        return self._finish(target, results, keep)

    def unanswered(
        self, target: Target, seconds: float, *, keep: bool = True
    ) -> Sample:
        """The inconclusive sample of a probe still waiting after seconds."""
        error = f"no answer within {math.ceil(seconds)} s"
        results = [
            CheckResult(name=name, status=UNREACHABLE, error=error, detail=error)
            for name in self.prober(target).names()
        ]
        return self._finish(target, results, keep)

    def _finish(self, target: Target, results: list[CheckResult], keep: bool) -> Sample:
        scored = compute(results, target.config.health.threshold)
        sample = Sample(
            target=target.name,
            at=utcnow(),
            score=scored.score,
            threshold=scored.threshold,
            healthy=scored.healthy,
            conclusive=scored.conclusive,
            checks=results,
            explanation=scored.explanation,
            lowered_by=scored.lowered_by,
        )
        if keep and self.store is not None:
            try:
                self._keep(sample, target.config.health.keep_samples)
            except sa.exc.SQLAlchemyError as exc:
                # The measurement still counts for alerts and triggers.
                log.warning(
                    "health sample of %s not kept in the state store: %s",
                    target.name,
                    str(exc).splitlines()[0],
                )
        if self.bus is not None:
            self.bus.emit(
                ev.HEALTH_SAMPLED,
                sample.summary,
                target=target.name,
                data=sample.to_dict(),
            )
        return sample

    def forget(self, name: str) -> None:
        with self._lock:
            prober = self._probers.pop(name, None)
        if prober is not None:
            prober.close()

    def close(self) -> None:
        with self._lock:
            probers = list(self._probers.values())
            self._probers.clear()
        for prober in probers:
            prober.close()

    def _keep(self, sample: Sample, keep: int) -> None:
        row = {
            "target": sample.target,
            "at": sample.at,
            "score": sample.score,
            "threshold": sample.threshold,
            "healthy": sample.healthy,
            "conclusive": sample.conclusive,
            "checks": {
                "checks": [c.to_dict() for c in sample.checks],
                "explanation": sample.explanation,
                "lowered_by": sample.lowered_by,
            },
        }
        with self.store.engine.begin() as conn:
            conn.execute(health_samples.insert().values(row))
            prune(conn, sample.target, keep)


def deadline(target: Target) -> float:
    """How long one sample may take in all before it is given up on."""
    health = target.config.health
    timeouts = [health.timeout] * 8 + [c.timeout for c in health.checks]
    return min(CONNECT_TIMEOUT, health.timeout) + sum(timeouts) + 2.0


def _within_deadline(prober: Prober, seconds: float) -> list[CheckResult]:
    """Run the probe in a thread; a hung driver cannot hold the caller past seconds."""
    box: dict[str, Any] = {}

    def probe() -> None:
        try:
            box["results"] = prober.run()
        except Exception as exc:  # noqa: BLE001 - a driver fault still yields a sample
            log.warning("health probe of %s failed: %s", prober.target.name, exc)
            box["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(
        target=probe, daemon=True, name=f"dbr-probe-{prober.target.name}"
    )
    worker.start()
    worker.join(seconds)
    if "results" in box:
        return box["results"]
    error = box.get("error") or f"no answer within {math.ceil(seconds)} s"
    if worker.is_alive():
        # The stuck connection is abandoned with its thread; start afresh next time.
        prober.close()
    return [
        CheckResult(name=name, status=UNREACHABLE, error=error, detail=error)
        for name in prober.names()
    ]


def prune(conn: sa.Connection, target: str, keep: int) -> int:
    """Delete all but the newest `keep` samples of target; returns rows deleted."""
    # Ordered by time so that the (target, at) index answers it.
    cutoff = conn.execute(
        sa.select(health_samples.c.at)
        .where(health_samples.c.target == target)
        .order_by(health_samples.c.at.desc())
        .offset(keep)
        .limit(1)
    ).scalar()
    if cutoff is None:
        return 0
    return conn.execute(
        health_samples.delete().where(
            health_samples.c.target == target, health_samples.c.at <= cutoff
        )
    ).rowcount


def recent_samples(store: Store, target: str, limit: int = 20) -> list[Sample]:
    """The newest samples of target, newest first."""
    query = (
        sa.select(health_samples)
        .where(health_samples.c.target == target)
        .order_by(health_samples.c.at.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [_from_row(row) for row in rows]


def _from_row(row: Any) -> Sample:
    body = row["checks"] or {}
    return Sample(
        target=row["target"],
        at=row["at"],
        score=row["score"],
        threshold=row["threshold"],
        healthy=bool(row["healthy"]),
        conclusive=bool(row["conclusive"]),
        checks=[CheckResult.from_dict(c) for c in body.get("checks", [])],
        explanation=body.get("explanation", []),
        lowered_by=body.get("lowered_by", []),
    )
