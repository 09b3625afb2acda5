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
    """A followed operation's step ended (succeeded, failed or skipped)."""

    operation_id: str
    step: dict[str, Any]


@dataclass
class TriggerFired(Message):
    """A trigger in suggest mode fired: its plan is offered in a banner."""

    target: str
    trigger: str
    strategy: str
    message: str


@dataclass
class TimelineExported(Message):
    """The Markdown timeline was written to path."""

    path: str


@dataclass
class TimelineBuilt(Message):
    markdown: str
