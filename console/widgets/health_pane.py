"""The Health pane: each check, the score's recent history, each trigger's state."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Sparkline, Static

from console.actions import HEALTH_ACTIONS, bindings
from console.widgets.pane import Pane
from console.widgets.table import Column, VirtualTable

COLUMNS = [
    Column("status", "status", width=9),
    Column("check", "check", max_width=34),
    Column("value", "value", max_width=12, align="right"),
    Column("threshold", "threshold", max_width=14),
    Column("weight", "weight", max_width=6, align="right"),
]


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
