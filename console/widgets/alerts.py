"""The alerts stream along the bottom: journal events as they arrive."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from console.format import clock

SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": ""}
SEVERITY_WORDS = {"critical": "CRIT", "warning": "WARN", "info": "info"}


class AlertsStream(RichLog):
    """Newest last; each line says its severity in words, colour only helps."""

    DEFAULT_CSS = """
    AlertsStream { height: 4; border-top: solid $primary-darken-2;
                   scrollbar-size: 0 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id, max_lines=500, wrap=False, markup=False, auto_scroll=True
        )
        self.can_focus = False
        self.seen = 0

    def add(self, event: dict[str, Any]) -> None:
        self.seen += 1
        severity = str(event.get("severity", "info"))
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(clock(event.get("at")) + " ", style="dim")
        line.append(
            f"{SEVERITY_WORDS.get(severity, severity):<4} ",
            style=SEVERITY_STYLES.get(severity, ""),
        )
        if event.get("target"):
            line.append(f"{event['target']}: ", style="bold")
        line.append(" ".join(str(event.get("message", "")).split()))
        self.write(line)
