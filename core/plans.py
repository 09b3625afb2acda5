"""Plans: pure values listing what an action will do, what it risks, what must hold.

Every action that changes a database or deletes a backup is first a Plan. The console
and the CLI render the same plan; only the executor (core.executor) runs one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.events import STEP_PROGRESS, Bus, Severity

if TYPE_CHECKING:
    from core.journal import Journal
    from core.state import Store
    from core.targets import Target


@dataclass(frozen=True)
class Risk:
    """Something a plan puts at risk, with the number that matters."""

    kind: str  # drop_table, drop_column, replace_data, irreversible, non_transactional…
    message: str
    severity: str = "warning"  # "warning" or "critical" (destroys data)
    table: str | None = None
    column: str | None = None
    rows: int | None = None
    bytes: int | None = None
    step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "severity": self.severity,
            "table": self.table,
            "column": self.column,
            "rows": self.rows,
            "bytes": self.bytes,
            "step": self.step,
        }


@dataclass
class Context:
    """What a running step may use: its target, the stores, events, the cancel flag."""

    target: Target
    store: Store
    journal: Journal
    bus: Bus
    operation_id: str
    cancel: threading.Event
    results: dict[str, Any] = field(default_factory=dict)
    step: str = ""

    def progress(
        self,
        done: float,
        total: float | None = None,
        message: str = "",
        unit: str | None = None,
    ) -> None:
        """Report progress inside the current step (bytes, rows, revisions...)."""
        self.bus.emit(
            STEP_PROGRESS,
            message or self.step,
            target=self.target.name,
            operation_id=self.operation_id,
            data={"step": self.step, "done": done, "total": total, "unit": unit},
        )

    def log(
        self, message: str, severity: Severity = Severity.INFO, **data: Any
    ) -> None:
        self.bus.emit(
            "step.log",
            message,
            severity=severity,
            target=self.target.name,
            operation_id=self.operation_id,
            data={"step": self.step, **data},
        )

    def cancelled(self) -> bool:
        return self.cancel.is_set()


StepRun = Callable[[Context], "dict[str, Any] | None"]


@dataclass
class Step:
    name: str
    description: str
    run: StepRun = field(repr=False)
    sql: str | None = None
    not_previewable: str | None = None  # why the SQL cannot be shown in advance
    destructive: bool = False
    transactional: bool = True
    estimate: float | None = None  # seconds, from the journal's past runs
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "sql": self.sql,
            "not_previewable": self.not_previewable,
            "destructive": self.destructive,
            "transactional": self.transactional,
            "estimate": self.estimate,
            **self.detail,
        }


@dataclass
class Postcondition:
    description: str
    check: Callable[[Context], tuple[bool, str]] = field(repr=False)


FailureReport = Callable[[Context, "Step", BaseException], "dict[str, Any]"]


@dataclass
class Plan:
    kind: str  # e.g. migration.downgrade, backup.restore, backup.prune
    target: str
    title: str
    steps: list[Step]
    risks: list[Risk] = field(default_factory=list)
    postconditions: list[Postcondition] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    safety_backup: Step | None = None  # run first when the plan destroys data
    explain_failure: FailureReport | None = field(default=None, repr=False)
    snapshot: bool = False  # record the schema before and after (changes a DB)

    @property
    def destructive(self) -> bool:
        return any(s.destructive for s in self.steps) or any(
            r.severity == "critical" for r in self.risks
        )

    @property
    def estimate(self) -> float | None:
        """Seconds, when every step has a past run to go by."""
        known = [s.estimate for s in self.steps]
        if self.safety_backup is not None:
            known.append(self.safety_backup.estimate)
        if not known or any(e is None for e in known):
            return None
        return float(sum(known))

    @property
    def transactional(self) -> bool:
        return all(s.transactional for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "title": self.title,
            **self.summary,
            "steps": [s.to_dict() for s in self.steps],
            "risks": [r.to_dict() for r in self.risks],
            "postconditions": [p.description for p in self.postconditions],
            "destructive": self.destructive,
            "transactional": self.transactional,
            "safety_backup": (
                self.safety_backup.to_dict() if self.safety_backup else None
            ),
            "estimate": self.estimate,
        }
