"""The Migrations pane: the revision history, applied and pending, and details."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.actions import MIGRATION_ACTIONS, bindings
from console.widgets.pane import Pane
from console.widgets.table import Column, Row, VirtualTable

COLUMNS = [
    Column("state", "state", width=10),
    Column("revision", "revision", max_width=14),
    Column("shape", "shape", max_width=12),
    Column("risk", "downgrade risk", max_width=28),
    Column("message", "message", max_width=44),
]


class MigrationsPane(Pane):
    TITLE = "Migrations"
    KEY = "1"
    BINDINGS: ClassVar[list[BindingType]] = bindings(MIGRATION_ACTIONS)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history: Any = None

    def compose(self) -> ComposeResult:
        yield self.notice
        yield Static("", id="migrations-current")
        yield VirtualTable(COLUMNS, empty="no revisions", id="revisions-table")
        with VerticalScroll(id="revision-detail-box", can_focus=False):
            yield Static("", id="revision-detail")

    @property
    def selected(self) -> Any:
        row = self.query_one(VirtualTable).current
        if row is None or self.history is None:
            return None
        return next((r for r in self.history.revisions if r.revision == row.key), None)

    def show_history(self, history: Any) -> None:
        self.history = history
        current = history.current
        line = Text()
        line.append("database at ")
        line.append(", ".join(current.heads) or "base (nothing applied)", style="bold")
        if current.at_head:
            line.append(" · at head", style="green")
        else:
            line.append(
                f" · NOT at head (scripts: {', '.join(current.script_heads)})",
                style="yellow",
            )
        for problem in current.problems:
            line.append(
                f"\nPROBLEM: {problem.message} — {problem.hint}", style="bold red"
            )
        self.query_one("#migrations-current", Static).update(line)
        heads = set(current.heads)
        rows = [
            Row(
                r.revision,
                (
                    _state(r, heads),
                    r.revision[:12],
                    _shape(r),
                    _risk(r.downgrade),
                    r.message or "",
                ),
            )
            for r in history.revisions
        ]
        self.query_one(VirtualTable).set_rows(rows)

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        # The detail always describes the row under the cursor, which d and u act on.
        self.show_selected()

    def clear(self) -> None:
        """Forget the shown target's history (on a target switch)."""
        self.history = None
        self.query_one("#migrations-current", Static).update("")
        self.query_one(VirtualTable).set_rows([])
        self.show_selected()

    def show_selected(self) -> None:
        revision = self.selected
        detail = self.query_one("#revision-detail", Static)
        if revision is None:
            detail.update("")
            return
        text = Text()
        text.append(f"{revision.revision}", style="bold")
        text.append(f"  {revision.message}\n")
        text.append(
            f"{'applied' if revision.applied else 'pending'}"
            f" · date {revision.date or '-'}"
            f" · parents {', '.join(revision.down_revisions) or 'none (base)'}"
        )
        if revision.branch_labels:
            text.append(f" · branch {', '.join(revision.branch_labels)}")
        if revision.depends_on:
            text.append(f" · depends on {', '.join(revision.depends_on)}")
        text.append("\nIts downgrade():\n", style="bold")
        down = revision.downgrade
        if not down.found:
            text.append(f" cannot be read: {down.problem}\n", style="yellow")
        elif down.raises:
            text.append(
                " RAISES: this revision cannot be downgraded\n", style="bold red"
            )
        elif down.empty:
            text.append(
                " does nothing: data and schema stay as they are "
                "(irreversible in practice)\n",
                style="yellow",
            )
        for op in down.operations:
            words = op.kind.replace("_", " ")
            where = ".".join(x for x in (op.table, op.column) if x) or (op.name or "")
            mark = "DESTRUCTIVE " if op.destructive else ""
            text.append(
                f" - {mark}{words} {where}".rstrip() + "\n",
                style="red" if op.destructive else "",
            )
        text.append(
            "\nd: plan a downgrade to here (live row counts, SQL) · u: "
            "plan an upgrade to here",
            style="dim",
        )
        detail.update(text)

    def _plan(self, direction: str) -> None:
        revision = self.selected
        if revision is None:
            self.app.notify("no revision selected", severity="warning")
            return
        refusal = self._refusal(revision, direction)
        if refusal:
            # Said before planning: a preview of "0 revisions" then a failed run
            # would only confuse the operator.
            self.app.notify(refusal, severity="warning")
            return
        from console.engines import engine

        migrations = engine("migrations")
        ws = self.app.ws
        target = self.app.target_name
        spec = revision.revision

        def planner() -> Any:
            return migrations.plan(
                ws.target(target), spec, direction=direction, journal=ws.journal
            )

        def words(plan: Any, safety: bool) -> list[str]:
            return ["migrations", direction, target, "--to", spec, "--yes"] + (
                [] if safety else ["--no-safety-backup"]
            )

        self.screen.open_plan(f"{direction} {target} to {spec[:12]}", planner, words)

    def _refusal(self, revision: Any, direction: str) -> str:
        """Why moving `direction` to `revision` has nothing to do, or ''."""
        short = revision.revision[:12]
        current = (
            self.history is not None and revision.revision in self.history.current.heads
        )
        if direction == "upgrade" and (revision.applied or current):
            return f"{short} is already applied; to go back use d on an older revision"
        if direction == "downgrade" and current:
            return (
                f"{short} is the current revision: nothing to downgrade; "
                "choose an older revision"
            )
        if direction == "downgrade" and not revision.applied:
            return f"{short} is not applied, so there is nothing to undo; u applies it"
        return ""

    def action_downgrade(self) -> None:
        self._plan("downgrade")

    def action_upgrade(self) -> None:
        self._plan("upgrade")


def _state(revision: Any, heads: set[str]) -> tuple[str, str]:
    if revision.revision in heads:
        return ("◀ current", "good")
    return ("✓ applied", "") if revision.applied else ("· pending", "warn")


def _shape(revision: Any) -> str:
    marks = []
    if revision.is_head:
        marks.append("head")
    if revision.is_merge:
        marks.append("merge")
    if revision.is_branch_point:
        marks.append("branches")
    if revision.is_base:
        marks.append("base")
    if revision.branch_labels:
        marks.append("@" + revision.branch_labels[0])
    return " ".join(marks) or "│"


def _risk(down: Any) -> tuple[str, str]:
    if not down.found:
        return ("unreadable", "warn")
    if down.raises:
        return ("CANNOT downgrade", "bad")
    destructive = [o for o in down.operations if o.destructive]
    if destructive:
        first = destructive[0]
        where = ".".join(x for x in (first.table, first.column) if x)
        more = f" +{len(destructive) - 1}" if len(destructive) > 1 else ""
        return (f"DROPS {first.kind.removeprefix('drop_')} {where}{more}", "bad")
    if down.empty:
        return ("no-op downgrade", "warn")
    return ("none found", "dim")
