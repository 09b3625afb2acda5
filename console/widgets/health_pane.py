"""The Health pane: each check, the score's recent history, each trigger's state."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Sparkline, Static

from console.actions import HEALTH_ACTIONS, bindings
from console.format import ago, score_words
from console.widgets.pane import Pane
from console.widgets.table import Column, Row, VirtualTable

COLUMNS = [
    Column("status", "status", width=13),
    Column("check", "check", max_width=32),
    Column("value", "value", max_width=12, align="right"),
    Column("threshold", "threshold", max_width=16),
    Column("weight", "weight", max_width=10),
]
STATUS = {
    "ok": ("✓ ok", "good"),
    "failing": ("✗ FAILING", "bad"),
    "timeout": ("? timeout", "warn"),
    "unreachable": ("? unreachable", "warn"),
}
TONE_STYLE = {"good": "green", "bad": "bold red", "warn": "yellow"}


class HealthPane(Pane):
    TITLE = "Health"
    KEY = "3"
    BINDINGS: ClassVar[list[BindingType]] = bindings(HEALTH_ACTIONS)

    def compose(self) -> ComposeResult:
        yield self.notice
        yield Static("", id="health-score")
        yield Sparkline([], id="health-sparkline")
        yield VirtualTable(COLUMNS, empty="no checks measured yet", id="checks-table")
        yield Static("", id="health-triggers")

    def action_measure(self) -> None:
        self.say("measuring…")
        self.screen.load_health(self.app.target_name, measure=True)

    def show(
        self,
        sample: Any,
        history: list[Any],
        triggers: list[Any],
        limits: dict[str, str],
    ) -> None:
        self.query_one("#health-score", Static).update(describe_sample(sample, history))
        scores = [s.score if s.score is not None else 0.0 for s in reversed(history)]
        self.query_one(Sparkline).data = scores or [0.0]
        rows = []
        for check in sample.checks if sample else []:
            words = STATUS.get(check.status, (check.status, "warn"))
            value = (
                "-"
                if check.value is None
                else (
                    f"{check.value:g}"
                    if isinstance(check.value, (int, float))
                    else str(check.value)
                )
            )
            weight = f"{check.weight:g}" + (" req" if check.required else "")
            rows.append(
                Row(
                    check.name,
                    (
                        words,
                        check.name,
                        value,
                        limits.get(check.name) or _limit(check),
                        weight,
                    ),
                )
            )
        self.query_one(VirtualTable).set_rows(rows)
        text = Text()
        if not triggers:
            text.append("no triggers configured", style="dim")
        for state in triggers:
            trigger = state.trigger
            mark = "FIRING" if state.due else "armed"
            text.append(f"{mark:<7}", style="bold red" if state.due else "")
            text.append(
                f" {trigger.name}: {state.description} → {trigger.strategy} "
                f"({trigger.mode})\n"
            )
        self.query_one("#health-triggers", Static).update(text)


def describe_sample(
    sample: Any, history: list[Any] | None = None, note: list[str] | None = None
) -> Group:
    """The score in words, the reasons it is lowered, and how recent it is."""
    if sample is None:
        return Group(Text("no sample yet: press m to measure"))
    if note:
        return Group(Text(note[0], style="bold"), describe_sample(sample))
    words, tone = score_words(
        sample.score, sample.threshold, sample.healthy, sample.conclusive
    )
    head = Text("score ")
    head.append(words, style=TONE_STYLE.get(tone, ""))
    head.append(f" · measured {ago(sample.at)}")
    if history and len(history) > 1:
        scored = [s.score for s in history if s.score is not None]
        if scored:
            head.append(
                f" · last {len(history)}: low {min(scored):.0f}, high "
                f"{max(scored):.0f}",
                style="dim",
            )
    lines = [head]
    for line in sample.explanation[:4]:
        lines.append(Text(f"  {line}", style="yellow" if not sample.healthy else ""))
    return Group(*lines)


def _limit(check: Any) -> str:
    detail = getattr(check, "detail", "") or ""
    if "(" in detail and detail.endswith(")"):
        return detail[detail.rindex("(") + 1 : -1]
    return "-"


def check_limits(config: Any) -> dict[str, str]:
    """'>= 1', '<= 0' or '1 to 30' for each configured check."""
    limits = {}
    for check in config.health.checks:
        if check.min is not None and check.max is not None:
            limits[check.name] = f"{check.min:g} to {check.max:g}"
        elif check.min is not None:
            limits[check.name] = f">= {check.min:g}"
        elif check.max is not None:
            limits[check.name] = f"<= {check.max:g}"
    return limits
