"""The Backups pane: the catalog with ages, sizes, marks and retention verdicts."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Input, Static

from console.actions import BACKUP_ACTIONS, bindings
from console.widgets.pane import Pane
from console.widgets.table import Column, VirtualTable

COLUMNS = [
    Column("tag", "", width=1),
    Column("age", "age", max_width=16),
    Column("size", "size", max_width=10, align="right"),
    Column("label", "label", max_width=20),
    Column("verified", "verified", max_width=12),
    Column("pinned", "pin", width=6),
    Column("verdict", "retention", max_width=40),
]


class BackupsPane(Pane):
    TITLE = "Backups"
    KEY = "2"
    BINDINGS: ClassVar[list[BindingType]] = bindings(BACKUP_ACTIONS)

    def compose(self) -> ComposeResult:
        yield self.notice
        yield Input(placeholder="filter: words in any column; escape clears",
                    id="backups-filter")
        yield VirtualTable(COLUMNS, empty="no backups in the catalog",
                           id="backups-table")
        yield Static("", id="backup-detail")
