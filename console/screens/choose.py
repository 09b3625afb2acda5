"""Roll back or restore? Both paths for the target, side by side, to choose from."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console import messages as msg
from console.format import count, seconds
from core.errors import DbrError

DOWNGRADE, RESTORE = "downgrade:1", "restore:latest-verified"


class ChooseScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("1,left", "choose(0)", "Downgrade"),
        Binding("2,right", "choose(1)", "Restore"),
    ]

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.strategies = [DOWNGRADE, RESTORE]
        self.plans: list[Any] = [None, None]

    def compose(self) -> ComposeResult:
        yield Static(
            f"Roll back or restore? {self.target}: both paths, side by side",
            classes="title",
        )
        with Horizontal(id="choices"):
            for index, title in enumerate(
                ("1 Downgrade migrations", "2 Restore the latest verified backup")
            ):
                with VerticalScroll(classes="choice", id=f"choice-{index}") as box:
                    box.border_title = title
                    yield Static("planning…", id=f"choice-body-{index}")
        yield Footer()

    def on_mount(self) -> None:
        strategy = self._configured_downgrade()
        if strategy:
            self.strategies[0] = strategy
        for index, strategy in enumerate(self.strategies):
            self.plan(index, strategy)

    def _configured_downgrade(self) -> str | None:
        """A trigger's own downgrade strategy, when one is configured."""
        config = self.app.ws.settings.targets[self.target]
        return next(
            (
                t.strategy
                for t in config.triggers
                if t.strategy.startswith("downgrade:")
            ),
            None,
        )

    @work(thread=True, group="choose", exit_on_error=False)
    def plan(self, index: int, strategy: str) -> None:
        from core import rollback

        try:
            plan = rollback.plan_strategy(self.app.ws, self.target, strategy)
        except DbrError as exc:
            self.post_message(
                msg.PlanFailed(
                    str(index),
                    f"{exc.title}"
                    + (f"\n{exc.cause}" if exc.cause else "")
                    + (f"\nwhat to do: {exc.hint}" if exc.hint else ""),
                )
            )
            return
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(
                msg.PlanFailed(str(index), f"{type(exc).__name__}: {exc}")
            )
            return
        self.post_message(msg.PlanReady(plan, [str(index)]))

    def on_plan_ready(self, message: msg.PlanReady) -> None:
        index = int(message.argv[0])
        self.plans[index] = message.plan
        self.query_one(f"#choice-body-{index}", Static).update(
            compare(message.plan, self.strategies[index])
        )

    def on_plan_failed(self, message: msg.PlanFailed) -> None:
        self.query_one(f"#choice-body-{message.title}", Static).update(
            Text(f"NOT POSSIBLE: {message.detail}", style="yellow")
        )

    def action_choose(self, index: int) -> None:
        if self.plans[index] is None:
            self.app.notify("that path has no plan", severity="warning")
            return
        main = self.app.screen_stack[-2]
        self.app.pop_screen()
        main.open_strategy(self.target, self.strategies[index])


def compare(plan: Any, strategy: str) -> Group:
    """What an operator weighs: steps, data at risk, time, what happens to newer data."""
    head = Text()
    head.append(f"{plan.title}\n", style="bold")
    head.append(f"strategy {strategy}\n", style="dim")
    estimate = plan.estimate
    head.append(
        "estimated time: "
        + (seconds(estimate) if estimate is not None else "unknown (no past runs)")
        + "\n"
    )
    for key, value in plan.summary.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            head.append(f"{key.replace('_', ' ')}: {value}\n")
    head.append(
        "DESTROYS DATA\n" if plan.destructive else "does not destroy data\n",
        style="bold red" if plan.destructive else "green",
    )
    risks = Text("\nData at risk\n", style="bold")
    if not plan.risks:
        risks.append(" none found\n", style="")
    for risk in plan.risks:
        numbers = (
            f" ({count(risk.rows)} rows)"
            if risk.rows is not None and count(risk.rows) not in risk.message
            else ""
        )
        risks.append(
            f" {'CRITICAL' if risk.severity == 'critical' else 'warning'}: "
            f"{risk.message}{numbers}\n",
            style="red" if risk.severity == "critical" else "yellow",
        )
    steps = Text(f"\nSteps ({len(plan.steps)})\n", style="bold")
    for number, step in enumerate(plan.steps, start=1):
        steps.append(
            f" {number}. {step.name}"
            + (" [DESTRUCTIVE]" if step.destructive else "")
            + "\n"
        )
    return Group(head, risks, steps)
