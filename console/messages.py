"""Messages the console's workers post to its screens, named for what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class WorkspaceOpened(Message):
    """The state store is open; names of the configured targets."""

    targets: list[str]


@dataclass
class WorkspaceFailed(Message):
    title: str
    detail: str


@dataclass
class JournalLoaded(Message):
    target: str
    operations: list[dict[str, Any]]


@dataclass
class OperationLoaded(Message):
    operation: dict[str, Any]


@dataclass
class EventsArrived(Message):
    """Journal events newer than the last ones seen, oldest first."""

    events: list[dict[str, Any]]


@dataclass
class PaneFailed(Message):
    """A pane's data could not be loaded; it says why instead of freezing."""

    pane: str
    target: str
    title: str
    detail: str


@dataclass
class PaneUnavailable(Message):
    """The engine behind a pane is not part of this build."""

    pane: str
    reason: str


@dataclass
class HistoryLoaded(Message):
    target: str
    history: Any


@dataclass
class BackupsLoaded(Message):
    target: str
    backups: list[Any]
    verdicts: dict[str, Any]


@dataclass
class HealthSampled(Message):
    target: str
    sample: Any
    history: list[Any]
    triggers: list[Any]


@dataclass
class ScoresLoaded(Message):
    """The latest score of every target, for the switcher."""

    scores: dict[str, Any]


@dataclass
class PlanReady(Message):
    plan: Any
    argv: list[str]


@dataclass
class PlanFailed(Message):
    title: str
    detail: str


@dataclass
class RollbackConfirmed(Message):
    """The operator confirmed a plan; the child process that runs it has started."""

    argv: list[str]
    pid: int


@dataclass
class OperationFollowed(Message):
    """A fresh look at an operation that runs in its own process."""

    operation: dict[str, Any]


@dataclass
class StepFinished(Message):
    operation_id: str
    step: dict[str, Any]


@dataclass
class BackupVerified(Message):
    backup_id: str
    ok: bool
    detail: str


@dataclass
class TriggerFired(Message):
    target: str
    trigger: str
    strategy: str
    message: str


@dataclass
class TimelineExported(Message):
    path: str


@dataclass
class TimelineBuilt(Message):
    markdown: str
