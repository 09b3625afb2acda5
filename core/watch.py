"""`dbr watch`: the unattended monitor of many targets.

Samples every target on its own interval from a pool of threads (one sample in
flight per target), turns changes of health into alerts, evaluates triggers and
acts as their mode says. A target that stops answering gives inconclusive samples
(alerted, never acted on) until it answers again. `stop` ends the loop between
samples; a rollback in progress is asked to stop between its steps.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core import events as ev
from core import metrics, rollback
from core.events import Severity
from core.health.monitor import Monitor, Sample, deadline, recent_samples
from core.state import utcnow

if TYPE_CHECKING:
    from core.targets import Target
    from core.workspace import Workspace

log = logging.getLogger(__name__)

HEALTHY, UNHEALTHY, INCONCLUSIVE = "healthy", "unhealthy", "inconclusive"
MAX_WORKERS = 64
STOP_GRACE = 10.0  # seconds to let in-flight samples end when stopping


@dataclass
class _Watched:
    target: Target
    interval: float
    next_at: float = 0.0
    running: Future | None = None
    state: str | None = None
    failing: tuple[str, ...] = ()
    latest: Sample | None = None
    recent: deque = field(default_factory=deque)
    fired: dict[str, datetime] = field(default_factory=dict)
    acting: threading.Thread | None = None
    started: float = 0.0  # when the running sample began (monotonic)
    deadline: float = 60.0  # seconds after which a running sample is overdue
    overdue_next: float = 0.0  # when to report the overdue target again
    lock: threading.Lock = field(default_factory=threading.Lock)


class Watcher:
    """Watches targets until stopped; serves `dbr watch`, `--once` and the console."""

    def __init__(
        self,
        ws: Workspace,
        names: list[str] | None = None,
        *,
        interval: float | None = None,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> None:
        self.ws = ws
        _ = ws.journal  # subscribes the journal to the bus before any event
        ws.start_alerts()
        names = names or list(ws.settings.targets)
        self.monitor = Monitor(ws.store, ws.bus)
        self.watched: dict[str, _Watched] = {}
        for name in names:
            target = ws.target(name)
            rollback.check_trigger_names(target, self.monitor.prober(target).names())
            needed = max([t.consecutive for t in target.config.triggers] or [1])
            # The samples kept in the store carry a streak across restarts and
            # `--once` runs, as trigger_states() counts it.
            kept = (
                recent_samples(ws.store, name, needed) if target.config.triggers else []
            )
            self.watched[name] = _Watched(
                target,
                interval or target.config.health.interval,
                recent=deque(kept, maxlen=needed),
                deadline=deadline(target),
                fired=rollback.last_fired(ws, name) if target.config.triggers else {},
            )
        self.on_sample = on_sample
        self.stop_event = threading.Event()
        self.pool = ThreadPoolExecutor(
            max_workers=min(MAX_WORKERS, len(names) or 1),
            thread_name_prefix="dbr-watch",
        )
        self.samples_taken = 0
        self._lock = threading.Lock()

    # -- running ----------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Sample until stop is set (SIGTERM, Ctrl-C, or the caller)."""
        if stop is not None:
            self.stop_event = stop
        log.info("watching %d target(s)", len(self.watched))
        # Spread the first samples over one interval so that targets do not all
        # wake together: fewer threads contend at once, which costs less CPU.
        start = time.monotonic()
        for position, item in enumerate(self.watched.values()):
            item.next_at = start + item.interval * position / len(self.watched)
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                for item in self.watched.values():
                    busy = item.running is not None and not item.running.done()
                    if busy:
                        self._watchdog(item, now)
                    elif item.next_at <= now:
                        # Keep to the schedule; after a long sample, start afresh.
                        item.next_at += item.interval
                        if item.next_at <= now:
                            item.next_at = now + item.interval
                        item.started = now
                        item.running = self.pool.submit(self._sample, item, False)
                wake = min(_wake_at(i, now) for i in self.watched.values())
                self.stop_event.wait(max(0.01, wake - time.monotonic()))
        finally:
            self.close()

    def run_once(self) -> list[Sample]:
        """One round: sample every target concurrently, alert, evaluate triggers."""
        futures = [
            self.pool.submit(self._sample, item, True) for item in self.watched.values()
        ]
        for future in futures:
            future.result()
        for item in self.watched.values():
            if item.acting is not None:
                item.acting.join()
        return [item.latest for item in self.watched.values() if item.latest]

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.stop_event.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + STOP_GRACE
        for item in self.watched.values():
            if item.running is not None and not item.running.done():
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    item.running.result(timeout=remaining)
                except TimeoutError:
                    log.warning(
                        "%s: a sample was still running when the watch stopped",
                        item.target.name,
                    )
            if item.acting is not None:
                # The rollback sees the stop flag and ends between steps.
                item.acting.join()
        self.monitor.close()

    # -- one target -------------------------------------------------------------

    def _sample(self, item: _Watched, guarded: bool) -> None:
        try:
            self._observe(item, self.monitor.sample(item.target, guarded=guarded))
        except Exception:  # one target's trouble must never end the watch
            log.exception(
                "watching %s failed; it is tried again next interval", item.target.name
            )

    def _watchdog(self, item: _Watched, now: float) -> None:
        """A probe stuck past its deadline: report the target inconclusive.

        The stuck call keeps its one worker thread until the driver gives up; no
        new probe of that target starts meanwhile, so nothing piles up.
        """
        if now - item.started < item.deadline or now < item.overdue_next:
            return
        item.overdue_next = now + item.interval
        try:
            self._observe(
                item, self.monitor.unanswered(item.target, now - item.started)
            )
        except Exception:
            log.exception("reporting %s as unanswered failed", item.target.name)

    def _observe(self, item: _Watched, sample: Sample) -> None:
        with item.lock:
            with self._lock:
                self.samples_taken += 1
            item.latest = sample
            self._alert(item, sample)
            self._triggers(item, sample)
        if self.on_sample is not None:
            self.on_sample(sample)

    def _alert(self, item: _Watched, sample: Sample) -> None:
        """Alerts on changes only; the router groups repeats in the quiet period."""
        name = item.target.name
        state = (
            INCONCLUSIVE
            if not sample.conclusive
            else HEALTHY
            if sample.healthy
            else UNHEALTHY
        )
        failing = tuple(sample.failing)
        before, item.state = item.state, state
        changed_failures = failing != item.failing
        item.failing = failing
        data = {
            "score": sample.score,
            "threshold": sample.threshold,
            "failing": list(failing),
            "explanation": sample.explanation,
        }
        if state == UNHEALTHY and (before != UNHEALTHY or changed_failures):
            self.ws.bus.emit(
                ev.HEALTH_DEGRADED,
                f"{name} health degraded: {sample.summary}",
                severity=Severity.WARNING,
                target=name,
                data=data,
            )
        elif state == INCONCLUSIVE and before != INCONCLUSIVE:
            self.ws.bus.emit(
                ev.HEALTH_INCONCLUSIVE,
                f"{name} health cannot be measured: {sample.summary}",
                severity=Severity.WARNING,
                target=name,
                data=data,
            )
        elif state == HEALTHY and before in (UNHEALTHY, INCONCLUSIVE):
            self.ws.bus.emit(
                ev.HEALTH_RECOVERED,
                f"{name} health recovered: {sample.summary}",
                target=name,
                data=data,
            )

    def _triggers(self, item: _Watched, sample: Sample) -> None:
        item.recent.appendleft(sample)
        if item.acting is not None and item.acting.is_alive():
            return  # a rollback is running; its own re-measurement judges recovery
        if not sample.conclusive:
            return  # never act on what could not be measured
        samples = list(item.recent)
        for trigger in item.target.config.triggers:
            state = rollback.evaluate(trigger, samples, item.fired.get(trigger.name))
            if not state.due:
                continue
            item.fired[trigger.name] = utcnow()
            log.warning(
                "%s: trigger %s fired (%s)",
                item.target.name,
                trigger.name,
                state.description,
            )
            item.acting = threading.Thread(
                target=self._act,
                args=(item, state, sample),
                daemon=True,
                name=f"dbr-act-{item.target.name}",
            )
            item.acting.start()
            return  # one action per target at a time

    def _act(
        self, item: _Watched, state: rollback.TriggerState, sample: Sample
    ) -> None:
        try:
            rollback.fire(self.ws, item.target, state, sample, cancel=self.stop_event)
        except Exception:
            log.exception(
                "acting on trigger %s of %s failed",
                state.trigger.name,
                item.target.name,
            )

    # -- exposition -------------------------------------------------------------

    def serve_metrics(self, port: int) -> Callable[[], None]:
        """Serve the Prometheus text format on 127.0.0.1:port; returns a stopper."""
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        return stop


def _wake_at(item: _Watched, now: float) -> float:
    """When the loop must next look at item: its next sample, or its running one."""
    if item.running is None or item.running.done():
        return item.next_at
    if now - item.started < 1.0:
        return now + 0.02  # most samples end within milliseconds
    # A slow probe: look a few times a second, and when it becomes overdue.
    return min(now + 0.25, max(item.started + item.deadline, item.overdue_next))


class _Collector:
    """Health from the watcher's latest samples, operations from the journal."""

    JOURNAL_TTL = 15.0

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self._summary: tuple[float, dict[str, Any]] | None = None

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        score = GaugeMetricFamily(
            "dbr_health_score",
            "Health score (0-100); NaN when inconclusive",
            labels=["target"],
        )
        threshold = GaugeMetricFamily(
            "dbr_health_threshold", "Health threshold", labels=["target"]
        )
        healthy = GaugeMetricFamily(
            "dbr_health_healthy", "1 when healthy", labels=["target"]
        )
        conclusive = GaugeMetricFamily(
            "dbr_health_conclusive", "1 when the checks could run", labels=["target"]
        )
        check_ok = GaugeMetricFamily(
            "dbr_health_check_ok", "1 when the check passes", labels=["target", "check"]
        )
        check_value = GaugeMetricFamily(
            "dbr_health_check_value",
            "The check's numeric value",
            labels=["target", "check"],
        )
        for name, item in self.watcher.watched.items():
            sample = item.latest
            if sample is None:
                continue
            score.add_metric([name], math.nan if sample.score is None else sample.score)
            threshold.add_metric([name], sample.threshold)
            healthy.add_metric([name], float(sample.healthy))
            conclusive.add_metric([name], float(sample.conclusive))
            for check in sample.checks:
                if check.skipped:  # not measured: neither 1 nor 0
                    continue
                check_ok.add_metric([name, check.name], float(check.ok))
                if isinstance(check.value, (int, float)):
                    check_value.add_metric([name, check.name], float(check.value))
        yield from (score, threshold, healthy, conclusive, check_ok, check_value)

        summary = self._journal_summary()
        operations = CounterMetricFamily(
            "dbr_operations",
            "Operations in the journal by kind and outcome",
            labels=["kind", "status"],
        )
        for kind, entry in summary["by_kind"].items():
            for status, count in entry["outcomes"].items():
                operations.add_metric([kind, status], count)
        yield operations
        recovery = summary["trigger_to_recovery"]
        to_recovery = GaugeMetricFamily(
            "dbr_trigger_to_recovery_seconds",
            "Seconds from a trigger to recovery",
            labels=["stat"],
        )
        for stat in ("mean", "p95", "last"):
            if recovery[stat] is not None:
                to_recovery.add_metric([stat], recovery[stat])
        yield to_recovery

    def _journal_summary(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._summary is None or now - self._summary[0] > self.JOURNAL_TTL:
            self._summary = (now, metrics.summary(self.watcher.ws.journal))
        return self._summary[1]
