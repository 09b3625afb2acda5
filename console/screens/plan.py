"""The preview of a plan: steps, SQL, risks, safety backup, estimate; then confirm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console import messages as msg
from console.format import count
from console.widgets.plan_view import render_plan
from core.errors import DbrError

Planner = Callable[[], Any]  # builds a core.plans.Plan, in a worker thread
Words = Callable[[Any, bool], list[str]]  # the dbr CLI words that run it


class PlanScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "confirm", "Confirm"),
        Binding("s", "toggle_safety", "Safety backup"),
    ]

    def __init__(self, title: str, planner: Planner, words: Words) -> None:
        super().__init__()
        self.heading = title
        self.planner = planner
        self.words = words
        self.plan: Any = None
        self.safety_backup = True

    def compose(self) -> ComposeResult:
        yield Static(f"Preview: {self.heading}", classes="title", id="plan-title")
        yield Static(
            "planning… (nothing is changed until you confirm)", id="plan-status"
        )
        with VerticalScroll(id="plan-body"):
            yield Static("", id="plan")
        yield Footer()

    def on_mount(self) -> None:
        self.build()

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def build(self) -> None:
        try:
            plan = self.planner()
        except DbrError as exc:
            detail = "; ".join(x for x in (exc.cause, exc.hint) if x)
            self.post_message(msg.PlanFailed(exc.title, detail))
            return
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(
                msg.PlanFailed("planning failed", f"{type(exc).__name__}: {exc}")
            )
            return
        self.post_message(msg.PlanReady(plan, []))

    def on_plan_ready(self, message: msg.PlanReady) -> None:
        self.plan = message.plan
        self._show()
        self.refresh_bindings()

    def on_plan_failed(self, message: msg.PlanFailed) -> None:
        self.query_one("#plan-status", Static).update(
            f"CANNOT PLAN: {message.title}"
            + (f"\n{message.detail}" if message.detail else "")
        )

    def _show(self) -> None:
        if self.app.read_only:
            status = "read-only: this is a preview only; nothing can be run"
        elif self.plan.destructive:
            status = (
                "c: confirm (you will type the target's name) · "
                + ("s: safety backup on/off · " if self.plan.safety_backup else "")
                + "escape: back"
            )
        else:
            status = "c: confirm · escape: back"
        self.query_one("#plan-status", Static).update(status)
        self.query_one("#plan", Static).update(
            render_plan(self.plan, safety_backup=self.safety_backup)
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            return None if (self.plan is None or self.app.read_only) else True
        if action == "toggle_safety":
            if self.app.read_only and self.plan is not None:
                return None  # shown greyed out: nothing can be run
            return bool(
                self.plan is not None
                and self.plan.destructive
                and self.plan.safety_backup is not None
            )
        return True

    def action_toggle_safety(self) -> None:
        self.safety_backup = not self.safety_backup
        self._show()

    def action_confirm(self) -> None:
        from console.screens.confirm import ConfirmScreen

        plan = self.plan
        # Every critical risk, never a sample: no one confirms a loss unseen.
        critical = [r for r in plan.risks if r.severity == "critical"]
        consequences = "\n".join(
            f"- {r.message}"
            + (
                f" ({count(r.rows)} rows)"
                if r.rows is not None and count(r.rows) not in r.message
                else ""
            )
            for r in critical
        )
        rows = sum(r.rows or 0 for r in critical)
        if critical:
            consequences = (
                f"{len(critical)} CRITICAL risk"
                f"{'s' if len(critical) != 1 else ''}"
                + (f", {count(rows)} rows at risk" if rows else "")
                + ":\n"
                + consequences
            )
        if plan.destructive and plan.safety_backup is not None:
            consequences += (
                "\nA safety backup is taken first."
                if self.safety_backup
                else "\nNO safety backup: you declined it."
            )

        def answered(yes: bool | None) -> None:
            if yes:
                self.start()

        self.app.push_screen(
            ConfirmScreen(
                plan.title, plan.target, plan.destructive, consequences.strip()
            ),
            answered,
        )

    def start(self) -> None:
        from console import runner
        from console.screens.progress import ProgressScreen

        words = self.words(self.plan, self.safety_backup)
        run = runner.start(runner.command(self.app.ws.settings.path, words))
        self.app.post_message(msg.RollbackConfirmed(run.argv, run.pid))
        self.app.switch_screen(
            ProgressScreen(self.plan.target, run=run, plan=self.plan.to_dict())
        )
