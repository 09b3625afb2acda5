"""The Migrations pane: the revision history, applied and pending, and details."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.actions import MIGRATION_ACTIONS, bindings
from console.widgets.pane import Pane
from console.widgets.table import Column, VirtualTable

COLUMNS = [
    Column("graph", "", max_width=6),
    Column("state", "state", width=10),
    Column("revision", "revision", max_width=14),
    Column("message", "message", max_width=48),
    Column("risk", "downgrade risk", max_width=24),
]


class MigrationsPane(Pane):
    TITLE = "Migrations"
    KEY = "1"
    BINDINGS: ClassVar[list[BindingType]] = bindings(MIGRATION_ACTIONS)

    def compose(self) -> ComposeResult:
        yield self.notice
        yield VirtualTable(COLUMNS, empty="no revisions", id="revisions-table")
        with VerticalScroll(id="revision-detail-box", can_focus=False):
            yield Static("", id="revision-detail")
