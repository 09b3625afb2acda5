"""Pruning preview: every backup kept or removed, with its reason and bytes freed."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from console.format import ago, size
from console.screens.plan import PlanScreen
from console.widgets.plan_view import render_plan


class PruneScreen(PlanScreen):
    """A PlanScreen whose preview lists the retention verdict of every backup."""

    def __init__(self, target: str, tagged: list[str]) -> None:
        self.target = target
        self.tagged = tagged
        super().__init__(f"prune the backups of {target}", self._planner, self._words)
        self.verdicts: list[Any] = []

    def _planner(self) -> Any:
        from core import backups

        ws = self.app.ws
        self.verdicts = backups.retention_verdicts(ws, self.target)
        # The engine prunes by the retention policy alone; tags are compared with it.
        return backups.plan_prune(ws, self.target)

    def _words(self, plan: Any, safety: bool) -> list[str]:
        return ["backups", "prune", self.target, "--yes"]

    def _show(self) -> None:
        super()._show()
        self.query_one("#plan").update(self.preview())

    def preview(self) -> RenderableType:
        removed = [v for v in self.verdicts if v.action == "remove"]
        freed = sum(v.size for v in removed)
        head = Text()
        head.append(f"{len(removed)} of {len(self.verdicts)} backups go, "
                    f"{size(freed)} freed\n", style="bold")
        judged = {v.id: v for v in self.verdicts}
        kept = [i for i in self.tagged if i in judged and judged[i].action != "remove"]
        if self.tagged:
            head.append(f"tagged by you: {len(self.tagged)}; pruning follows the "
                        "retention policy, so a tagged backup that a rule keeps "
                        "stays")
            head.append(f" ({len(kept)} of them: {', '.join(kept)})" if kept else "")
            head.append("\n")
        table = Text()
        for verdict in self.verdicts:
            gone = verdict.action == "remove"
            table.append("REMOVE " if gone else "keep   ",
                         style="bold yellow" if gone else "green")
            table.append("T " if verdict.id in self.tagged else "  ")
            table.append(f"{verdict.id:<14} {ago(verdict.created_at):<16} "
                         f"{size(verdict.size):>10}  {'; '.join(verdict.reasons)}\n")
        return Group(head, table, Text(""), render_plan(self.plan))
