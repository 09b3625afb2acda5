"""Typed events and the bus that carries them to the journal, sinks and screens."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from core.secrets import redact, redact_value

log = logging.getLogger(__name__)


class Severity(IntEnum):
    INFO = 10
    WARNING = 20
    CRITICAL = 30

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]

    def __str__(self) -> str:
        return self.name.lower()


# Event kinds, named as operators say them.
OPERATION_STARTED = "operation.started"
STEP_STARTED = "step.started"
STEP_PROGRESS = "step.progress"
STEP_FINISHED = "step.finished"
OPERATION_SUCCEEDED = "operation.succeeded"
OPERATION_FAILED = "operation.failed"
OPERATION_CANCELLED = "operation.cancelled"
HEALTH_SAMPLED = "health.sampled"
HEALTH_DEGRADED = "health.degraded"
HEALTH_RECOVERED = "health.recovered"
HEALTH_INCONCLUSIVE = "health.inconclusive"
TRIGGER_FIRED = "trigger.fired"
BACKUP_FAILED = "backup.failed"
VERIFY_FAILED = "verify.failed"
ALERT_FAILED = "alert.failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Event:
    kind: str
    message: str
    severity: Severity = Severity.INFO
    target: str | None = None
    operation_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "severity": str(self.severity),
            "target": self.target,
            "operation_id": self.operation_id,
            "message": redact(self.message),
            "data": redact_value(self.data),
        }


Subscriber = Callable[[Event], None]


class Bus:
    """Delivers each event to every subscriber; one failing subscriber harms none."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception(
                    "event subscriber %r failed on %s", subscriber, event.kind
                )

    def emit(self, kind: str, message: str, **fields: Any) -> Event:
        event = Event(kind=kind, message=message, **fields)
        self.publish(event)
        return event
