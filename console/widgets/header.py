"""The header: which target, where, how healthy, and the other targets' scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.widgets import Static

from console.format import score_words

TONE_STYLES = {"good": "green", "bad": "bold red", "warn": "yellow", "dim": "dim"}


@dataclass
class TargetLine:
    name: str
    dialect: str = ""
    host: str = ""
    score: float | None = None
    threshold: float | None = None
    healthy: bool | None = None
    conclusive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class TargetHeader(Static):
    """Two lines: the current target and its score; the switcher with every score."""

    DEFAULT_CSS = """
    TargetHeader { height: 2; background: $panel; padding: 0 1; }
    """

    def __init__(self, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.read_only = read_only
        self.current: TargetLine | None = None
        self.others: dict[str, TargetLine] = {}
        self.running: str | None = None

    def show(
        self,
        current: TargetLine | None,
        others: dict[str, TargetLine],
        running: str | None = None,
    ) -> None:
        self.current, self.others, self.running = current, others, running
        self.update(self._text())

    def on_mount(self) -> None:
        self.update(self._text())

    def _text(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("dbr ", style="bold")
        if self.current is None:
            text.append("opening the workspace…", style="dim")
        else:
            line = self.current
            text.append(f" {line.name} ", style="bold reverse")
            text.append(f" {line.dialect} · {line.host} · ")
            words, tone = score_words(
                line.score, line.threshold, line.healthy, line.conclusive
            )
            text.append("health ")
            text.append(words, style=TONE_STYLES[tone])
        if self.read_only:
            text.append("  [READ-ONLY]", style="bold reverse")
        text.append("\n")
        if self.running:
            text.append("▶ RUNNING: ", style="bold yellow")
            text.append(self.running)
            text.append("  ")
        if len(self.others) > 1:
            text.append("targets (t): ", style="dim")
            for name, other in self.others.items():
                mark = "▸" if self.current and name == self.current.name else " "
                if other.score is None or not other.conclusive:
                    state, tone = "?", "warn"
                elif other.healthy is False or (
                    other.threshold is not None and other.score < other.threshold
                ):
                    state, tone = f"{other.score:.0f}% UNHEALTHY", "bad"
                else:
                    state, tone = f"{other.score:.0f}% ok", "good"
                text.append(f"{mark}{name} ")
                text.append(state, style=TONE_STYLES[tone])
                text.append("  ")
        elif not self.running:
            text.append("ctrl+p: every action · 1-4: panes · ?: keys", style="dim")
        return text
