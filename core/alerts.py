"""Alert sinks: a JSON-lines file and webhooks, each with a minimum severity.

A sink never fails or blocks an operation: webhooks are posted from a background
thread, and a delivery that fails after its retries is recorded in the journal.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from core import events as ev
from core.config import SinkConfig
from core.errors import ConfigError
from core.events import Event, Severity
from core.secrets import display_url, register

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

JSON_HEADERS = {"content-type": "application/json"}
GROUPED = {ev.HEALTH_DEGRADED, ev.HEALTH_INCONCLUSIVE}
NOT_ALERTS = {
    ev.HEALTH_SAMPLED,
    ev.STEP_PROGRESS,
    "step.log",
    ev.STEP_STARTED,
    ev.STEP_FINISHED,
}


class Sink:
    name = "sink"

    def __init__(self, min_severity: Severity) -> None:
        self.min_severity = min_severity

    def wants(self, event: Event) -> bool:
        return event.kind not in NOT_ALERTS and event.severity >= self.min_severity

    def send(self, event: Event) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Take no more events; deliver those pending."""

    def wait(self, deadline: float, stop: threading.Event | None = None) -> bool:
        """Wait for the pending events until deadline (a time.monotonic()) or
        stop is set; False when the operator stopped the wait."""
        return True


class JsonLinesSink(Sink):
    def __init__(self, path: Path, min_severity: Severity) -> None:
        super().__init__(min_severity)
        self.path = path
        self.name = f"jsonl:{path}"
        self._lock = threading.Lock()

    def send(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), sort_keys=True, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line)


class WebhookSink(Sink):
    """POSTs JSON with a Slack-compatible `text` field, from its own thread."""

    def __init__(
        self,
        url: str,
        min_severity: Severity,
        *,
        timeout: float,
        retries: int,
        on_failure: Callable[[str, Event, str], None],
        backoff: float = 0.5,
    ) -> None:
        super().__init__(min_severity)
        register_url_secret(url)
        self.url = url
        self.name = f"webhook:{display_url(url)}"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.on_failure = on_failure
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=1000)
        self._sending: Event | None = None
        self._delivered = threading.Event()  # set when the thread has ended
        self._thread = threading.Thread(
            target=self._deliver, daemon=True, name="dbr-webhook"
        )
        self._thread.start()

    def send(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.on_failure(self.name, event, "the webhook queue is full; dropped")

    def finish(self) -> None:
        with suppress(queue.Full):  # then wait() gives up on the rest
            self._queue.put_nowait(None)

    def wait(self, deadline: float, stop: threading.Event | None = None) -> bool:
        """Wait for delivery until deadline; whatever is still pending then
        (the operator can stop the wait: stop, or Ctrl-C) is journaled as not
        delivered, so that no alert is lost without a trace."""
        stopped = False
        try:
            while not self._delivered.wait(min(0.05, deadline - time.monotonic())):
                stopped = stop is not None and stop.is_set()
                if stopped or time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            stopped = True
        if self._delivered.is_set():
            return not stopped
        left = [self._sending] if self._sending is not None else []
        with suppress(queue.Empty):
            while True:
                left.append(self._queue.get_nowait())
        for event in filter(None, left):
            self.on_failure(
                self.name,
                event,
                f"{self.name}: not confirmed delivered when dbr stopped waiting",
            )
        return not stopped

    def _deliver(self) -> None:
        try:
            self._deliver_all()
        finally:
            self._delivered.set()

    def _deliver_all(self) -> None:
        import httpx  # here: most commands send no webhook, and it takes 40 ms

        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while (event := self._queue.get()) is not None:
                self._sending = event
                try:
                    error = self._post(client, event)
                except Exception as exc:  # noqa: BLE001 - a bad event stops no other
                    error = f"{self.name} failed: {type(exc).__name__}: {exc}"
                self._sending = None
                if not error:
                    continue
                try:
                    self.on_failure(self.name, event, error)
                except Exception:  # the thread must outlive a journal fault
                    log.exception("recording a failed alert of %s failed", self.name)

    def _post(self, client: httpx.Client, event: Event) -> str | None:
        import httpx

        body = event.to_dict()
        body["text"] = slack_text(event)
        payload = json.dumps(body, default=str).encode()
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = client.post(self.url, content=payload, headers=JSON_HEADERS)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 300:
                return None
            error = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code != 429:
                break
        return f"{self.name} failed after {attempt + 1} attempt(s): {error}"


def register_url_secret(url: str) -> None:
    """Webhook URLs often carry their secret in the path; keep it out of output."""
    import httpx

    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError("invalid webhook URL", cause=str(exc)) from None
    register(parts.password)
    if parts.path.strip("/"):
        register(parts.path.rstrip("/").rsplit("/", 1)[-1])


def slack_text(event: Event) -> str:
    mark = {
        Severity.INFO: "[info]",
        Severity.WARNING: "[WARNING]",
        Severity.CRITICAL: "[CRITICAL]",
    }[event.severity]
    where = f" {event.target}:" if event.target else ""
    return f"{mark}{where} {event.to_dict()['message']}"


class Router:
    """Sends bus events to sinks, grouping repeated health alerts in a quiet period."""

    def __init__(
        self,
        sinks: list[Sink],
        quiet_period: float,
        record_failure: Callable[[Event], None],
    ) -> None:
        self.sinks = sinks
        self.quiet_period = quiet_period
        self.record_failure = record_failure
        # (kind, target) -> when and how severe the last alert sent was
        self._last_sent: dict[tuple[str, str | None], tuple[float, Severity]] = {}
        self._suppressed: dict[tuple[str, str | None], int] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        event = self._group(event)
        if event is None:
            return
        for sink in self.sinks:
            if not sink.wants(event):
                continue
            try:
                sink.send(event)
            except Exception as exc:
                self.failed(sink.name, event, f"{type(exc).__name__}: {exc}")

    def _group(self, event: Event) -> Event | None:
        """Hold back repeats of a health alert within the quiet period.

        A repeat that is more severe than the alert sent is never held back, and
        the count of held-back alerts travels with the next alert of that target
        that is sent (a repeat after the quiet period, or its recovery).
        """
        if event.kind not in GROUPED:
            if event.kind != ev.HEALTH_RECOVERED:
                return event
            with self._lock:
                count = 0
                for kind in GROUPED:
                    self._last_sent.pop((kind, event.target), None)
                    count += self._suppressed.pop((kind, event.target), 0)
            return _with_count(event, count)
        key = (event.kind, event.target)
        now = time.monotonic()
        with self._lock:
            last = self._last_sent.get(key)
            if (
                last is not None
                and now - last[0] < self.quiet_period
                and event.severity <= last[1]
            ):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last_sent[key] = (now, event.severity)
            count = self._suppressed.pop(key, 0)
        return _with_count(event, count)

    def failed(self, sink_name: str, event: Event, error: str) -> None:
        log.warning("alert sink %s failed on %s: %s", sink_name, event.kind, error)
        self.record_failure(
            Event(
                kind=ev.ALERT_FAILED,
                message=f"alert {event.kind} not delivered: {error}",
                severity=Severity.WARNING,
                target=event.target,
                operation_id=event.operation_id,
                data={"sink": sink_name, "event": event.kind, "error": error},
            )
        )

    def close(self, timeout: float = 5.0, stop: threading.Event | None = None) -> None:
        """Deliver what every sink has pending, all at once, within timeout
        (or until stop is set)."""
        deadline = time.monotonic() + timeout
        for sink in self.sinks:
            sink.finish()
        for sink in self.sinks:
            if not sink.wait(deadline, stop):
                deadline = 0.0  # stopped: no more waiting, for any sink


def _with_count(event: Event, count: int) -> Event:
    if not count:
        return event
    return Event(
        kind=event.kind,
        message=f"{event.message} ({count} similar alerts grouped in the quiet period)",
        severity=event.severity,
        target=event.target,
        operation_id=event.operation_id,
        data={**event.data, "grouped": count},
        at=event.at,
    )


def build_sinks(
    configs: tuple[SinkConfig, ...], on_failure: Callable[[str, Event, str], None]
) -> list[Sink]:
    sinks: list[Sink] = []
    for index, config in enumerate(configs):
        severity = Severity.parse(config.min_severity)
        if config.type == "jsonl":
            sinks.append(JsonLinesSink(config.path, severity))
            continue
        url = config.url
        if config.url_env:
            url = os.environ.get(config.url_env)
            if not url:
                raise ConfigError(
                    f"alerts.sinks[{index}] needs a webhook URL",
                    cause=f"${config.url_env} is not set",
                    hint=f"export {config.url_env}=https://...",
                )
        sinks.append(
            WebhookSink(
                url,
                severity,
                timeout=config.timeout,
                retries=config.retries,
                on_failure=on_failure,
            )
        )
    return sinks
