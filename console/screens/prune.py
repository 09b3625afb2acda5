"""Pruning preview: every backup kept, removed or refused, with reasons and bytes.

With backups tagged in the Backups pane, the plan removes those (r adds what the
retention policy removes); with none tagged, it prunes by the policy. A tagged backup
that dbr never removes (pinned, the newest verified one, in use, the last complete
one) is shown as refused, with its reason, and stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Static

from console.format import ago, size
from console.screens.plan import PlanScreen
from console.widgets.plan_view import render_plan

MARKS = {
    "remove": ("REMOVE", "bold yellow"),
    "refused": ("REFUSED", "bold red"),
    "keep": ("keep", "green"),
}


class PruneScreen(PlanScreen):
    """A PlanScreen whose preview lists the verdict on every backup of the target."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "toggle_policy", "Retention policy too"),
    ]

    def __init__(self, target: str, tagged: list[str]) -> None:
        self.target = target
        self.tagged = list(tagged)
        self.use_policy = not self.tagged  # nothing tagged: prune by the policy
        super().__init__(self._heading(), self._planner, self._words)
        self.verdicts: list[dict[str, Any]] = []

    def _heading(self) -> str:
        if not self.tagged:
            return f"prune the backups of {self.target} by its retention policy"
        return f"remove the {len(self.tagged)} tagged backups of {self.target}" + (
            " and prune by its retention policy" if self.use_policy else ""
        )

    def _planner(self) -> Any:
        from core import backups

        return backups.plan_prune(
            self.app.ws, self.target, remove=self.tagged, policy=self.use_policy
        )

    @property
    def removals(self) -> list[str]:
        return [v["id"] for v in self.verdicts if v["action"] == "remove"]

    def _words(self, plan: Any, safety: bool) -> list[str]:
        if not self.tagged:
            return ["backups", "prune", self.target, "--yes"]
        # Only the tagged ones that go: a refused one named would refuse the run.
        chosen = [i for i in self.tagged if i in self.removals]
        if not chosen:
            return ["backups", "prune", self.target, "--yes"]
        return [
            "backups",
            "remove",
            *chosen,
            *(["--policy"] if self.use_policy else []),
            "--yes",
        ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm" and self.plan is not None and not self.removals:
            return None  # nothing would be removed: nothing to confirm
        if action == "toggle_policy":
            return bool(self.tagged)
        return super().check_action(action, parameters)

    def action_toggle_policy(self) -> None:
        self.use_policy = not self.use_policy
        self.heading = self._heading()
        self.plan, self.verdicts = None, []
        self.query_one("#plan-title", Static).update(f"Preview: {self.heading}")
        self.query_one("#plan-status", Static).update(
            "planning… (nothing is changed until you confirm)"
        )
        self.query_one("#plan", Static).update("")
        self.refresh_bindings()
        self.build()

    def _show(self) -> None:
        self.verdicts = self.plan.summary["detail"]["verdicts"]
        super()._show()
        if not self.removals and not self.app.read_only:
            self.query_one("#plan-status", Static).update(
                "nothing would be removed · escape: back"
                + (" · r: retention policy on/off" if self.tagged else "")
            )
        elif self.tagged and not self.app.read_only:
            self.query_one("#plan-status", Static).update(
                "c: confirm (you will type the target's name) · r: retention policy "
                + ("off" if self.use_policy else "on")
                + " · escape: back"
            )
        self.query_one("#plan", Static).update(self.preview())

    def preview(self) -> RenderableType:
        removed = [v for v in self.verdicts if v["action"] == "remove"]
        refused = [v for v in self.verdicts if v["action"] == "refused"]
        freed = sum(v["frees"] for v in removed)
        head = Text()
        head.append(
            f"{len(removed)} of {len(self.verdicts)} backups go, {size(freed)} freed",
            style="bold",
        )
        head.append(f" ({freed:,} bytes)\n")
        if self.tagged:
            head.append(
                f"tagged by you: {len(self.tagged)}; retention policy: "
                + ("applied too" if self.use_policy else "not applied (r)")
                + "\n"
            )
        if refused:
            head.append(
                f"{len(refused)} tagged cannot be removed and stay: "
                + ", ".join(v["id"] for v in refused)
                + "\n",
                style="bold",
            )
        table = Table(
            box=None, show_header=True, header_style="bold", padding=(0, 1), expand=True
        )
        for name, justify in (
            ("verdict", "left"),
            ("tag", "left"),
            ("id", "left"),
            ("age", "left"),
            ("size", "right"),
        ):
            table.add_column(name, justify=justify, no_wrap=True)
        table.add_column("why", ratio=1)
        for verdict in self.verdicts:
            word, style = MARKS.get(verdict["action"], (verdict["action"], ""))
            created = datetime.fromisoformat(verdict["created_at"])
            table.add_row(
                Text(word, style=style),
                "T" if verdict["id"] in self.tagged else "",
                verdict["id"],
                ago(created),
                size(verdict["size"]),
                "; ".join(verdict["reasons"]),
            )
        return Group(head, table, Text(""), render_plan(self.plan))
