"""The Backups pane: the catalog with ages, sizes, marks and retention verdicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Input, Static

from console.actions import BACKUP_ACTIONS, bindings
from console.format import ago, size
from console.widgets.pane import Pane
from console.widgets.table import Column, Row, VirtualTable

COLUMNS = [
    Column("tag", "tag", width=3),
    Column("age", "age", max_width=16),
    Column("size", "size", max_width=10, align="right"),
    Column("label", "label", max_width=18),
    Column("verified", "verified", max_width=12),
    Column("pinned", "pin", width=6),
    Column("verdict", "retention", max_width=60),
]
SORTABLE = ("age", "size", "label", "verified", "verdict")


class BackupsPane(Pane):
    TITLE = "Backups"
    KEY = "2"
    BINDINGS: ClassVar[list[BindingType]] = bindings(BACKUP_ACTIONS)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.backups: dict[str, Any] = {}
        self.verdicts: dict[str, Any] = {}
        self.tagged: set[str] = set()
        self.sort_index = -1

    def compose(self) -> ComposeResult:
        yield self.notice
        yield Input(
            placeholder="filter: words in any column; escape clears",
            id="backups-filter",
        )
        yield VirtualTable(
            COLUMNS,
            empty="no backups in the catalog: b creates one",
            id="backups-table",
        )
        yield Static("", id="backup-detail")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#backups-table", VirtualTable)

    @property
    def selected(self) -> Any:
        row = self.table.current
        return self.backups.get(row.key) if row else None

    def show(self, backups: list[Any], verdicts: dict[str, Any]) -> None:
        self.backups = {b.id: b for b in backups}
        self.verdicts = verdicts
        self.tagged &= set(self.backups)
        self.table.set_rows(self._rows(backups))

    def _rows(self, backups: Iterable[Any]) -> list[Row]:
        make = self._cells  # one bound method for all: a row is then one object
        return [Row(b.id, make=make, source=b) for b in backups]

    def _cells(self, backup: Any) -> tuple[list[Any], list[Any]]:
        verdict = self.verdicts.get(backup.id)
        if verdict is None:
            verdict_cell: Any = ("-", "dim")
        elif verdict.action == "remove":
            verdict_cell = ("REMOVE: " + "; ".join(verdict.reasons), "warn")
        else:
            verdict_cell = ("keep: " + "; ".join(verdict.reasons), "")
        if backup.deep_verify_ok is False or backup.verify_ok is False:
            verified: Any = ("✗ FAILED", "bad")
        elif backup.deep_verify_ok:
            verified = ("✓ deep", "good")
        elif backup.verify_ok:
            verified = ("✓ yes", "good")
        else:
            verified = ("- never", "dim")
        status = "" if backup.complete else f" [{backup.status}]"
        tag = ("DEL", "bad") if backup.id in self.tagged else ""
        return [
            tag,
            ago(backup.created_at),
            size(backup.size),
            (backup.label or "-") + status,
            verified,
            ("PINNED", "good") if backup.pinned else "-",
            verdict_cell,
        ], [
            backup.id in self.tagged,
            -backup.created_at.timestamp(),
            backup.size or 0,
            backup.label or "",
            verified[0],
            backup.pinned,
            verdict_cell[0],
        ]

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        # The detail always describes the row under the cursor, which v/R/p act on.
        self.show_selected()

    def clear(self) -> None:
        """Forget the shown target's backups (on a target switch)."""
        self.tagged.clear()
        self.show([], {})
        self.show_selected()

    def show_selected(self) -> None:
        backup = self.selected
        detail = self.query_one("#backup-detail", Static)
        if backup is None:
            detail.update("")
            return
        heads = ", ".join(backup.manifest.get("alembic_heads") or []) or "-"
        tables = backup.tables
        verdict = self.verdicts.get(backup.id)
        # The table cuts the retention reason at narrow widths; here it is whole.
        retention = (
            ""
            if verdict is None
            else (
                f"\nretention: {'REMOVE' if verdict.action == 'remove' else 'keep'}: "
                + "; ".join(verdict.reasons)
            )
        )
        detail.update(
            f"{backup.id} · {backup.created_at:%Y-%m-%d %H:%M} UTC · revision {heads}"
            f" · {len(tables)} tables, {sum(tables.values()):,} rows"
            + (f" · pinned: {backup.pin_reason}" if backup.pin_reason else "")
            + retention
            + f"\n{backup.path}"
        )

    def action_tag(self) -> None:
        row = self.table.current
        if row is None:
            return
        self.tagged ^= {row.key}
        backup = self.backups[row.key]
        self.table.set_rows(self._rows(self.backups.values()), keep=row.key)
        self.table.cursor = min(self.table.cursor + 1, len(self.table.rows) - 1)
        # Told now, not only in the preview: dbr never removes a pinned backup.
        refused = (
            f"; {backup.id} is pinned, so it will be refused"
            if backup.pinned and backup.id in self.tagged
            else ""
        )
        self.app.notify(
            f"{len(self.tagged)} tagged for removal{refused}; P previews their removal"
            if self.tagged
            else "no backup tagged",
            timeout=2,
        )

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTABLE)
        words = self.table.sort_by(SORTABLE[self.sort_index])
        self.notice.update("")
        self.app.notify(f"backups {words}", timeout=2)

    def action_filter(self) -> None:
        box = self.query_one("#backups-filter", Input)
        box.add_class("-shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#backups-filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            box.remove_class("-shown")
            self.table.focus()

    # -- actions: each is a plan, a detached run, or a catalog mark --------------

    def _engine(self) -> Any:
        from console.engines import engine, missing

        backups = engine("backups")
        if backups is None:
            self.app.notify(missing("backups"), severity="warning")
        return backups

    def _selected_or_say(self) -> Any:
        backup = self.selected
        if backup is None:
            self.app.notify("no backup selected", severity="warning")
        return backup

    def _run(self, words: list[str], title: str) -> None:
        from console.runner import cli_has

        if not cli_has(words):
            self.app.notify(
                f"not available: `dbr {' '.join(words[:2])}` is not part of this build",
                severity="warning",
            )
            return
        self.screen.follow(words, title, self.app.target_name)

    def action_create_backup(self) -> None:
        from console.screens.confirm import ConfirmScreen

        target = self.app.target_name

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(["backups", "create", target], f"backup of {target}")

        self.app.push_screen(
            ConfirmScreen(
                f"back up {target} now",
                target,
                False,
                "A new backup is written to the target's backup folder and cataloged.",
            ),
            answered,
        )

    def action_verify(self) -> None:
        backup = self._selected_or_say()
        if backup is not None:
            self._run(["backups", "verify", backup.id], f"verify backup {backup.id}")

    def action_deep_verify(self) -> None:
        backup = self._selected_or_say()
        if backup is not None:
            self._run(
                ["backups", "verify", backup.id, "--deep"],
                f"deep verify backup {backup.id}",
            )

    def action_pin(self) -> None:
        backup = self._selected_or_say()
        if backup is not None and self._engine() is not None:
            self.screen.toggle_pin(backup.id, not backup.pinned)

    def action_restore(self) -> None:
        backups = self._engine()
        backup = self._selected_or_say()
        if backups is None or backup is None:
            return
        ws, target, backup_id = self.app.ws, self.app.target_name, backup.id

        def words(plan: Any, safety: bool) -> list[str]:
            return ["backups", "restore", backup_id, "--yes"] + (
                [] if safety else ["--no-safety-backup"]
            )

        self.screen.open_plan(
            f"restore {target} from backup {backup_id}",
            lambda: backups.plan_restore(ws, backup_id, target=target),
            words,
        )

    def action_prune(self) -> None:
        from console.screens.prune import PruneScreen

        if self._engine() is not None:
            self.app.push_screen(PruneScreen(self.app.target_name, sorted(self.tagged)))
