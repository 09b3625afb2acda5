"""The result of an operation: outcome, checks, what to do, and health re-measured."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console import messages as msg
from console.engines import engine, missing
from console.widgets.journal_pane import describe_operation


class ResultScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("m", "measure", "Measure health again"),
    ]

    def __init__(self, target: str, operation: dict[str, Any]) -> None:
        super().__init__()
        self.target = target
        self.operation = operation

    def compose(self) -> ComposeResult:
        state = str(self.operation.get("status", "")).upper()
        yield Static(f"Result: {state}", classes="title", id="result-title")
        with VerticalScroll(id="result-body"):
            yield Static("health: measuring…", id="result-health")
            if self.operation.get("id"):
                yield Static(describe_operation(self.operation), id="result-detail")
            else:
                yield Static(
                    Text(str(self.operation.get("error", ""))), id="result-detail"
                )
        yield Footer()

    def on_mount(self) -> None:
        self.action_measure()

    def action_measure(self) -> None:
        self.query_one("#result-health", Static).update("health: measuring…")
        self.measure()

    @work(thread=True, exclusive=True, group="measure", exit_on_error=False)
    def measure(self) -> None:
        health = engine("health")
        if health is None:
            self.post_message(msg.PaneUnavailable("health", missing("health")))
            return
        try:
            sample = health.sample(self.app.ws, self.target)
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(
                msg.PaneFailed("health", self.target, "cannot measure health", str(exc))
            )
            return
        self.post_message(msg.HealthSampled(self.target, sample, [], []))

    def on_pane_unavailable(self, message: msg.PaneUnavailable) -> None:
        self.query_one("#result-health", Static).update(f"health: {message.reason}")

    def on_pane_failed(self, message: msg.PaneFailed) -> None:
        self.query_one("#result-health", Static).update(
            f"health: {message.title}: {message.detail}"
        )

    def on_health_sampled(self, message: msg.HealthSampled) -> None:
        from console.widgets.health_pane import describe_sample

        self.query_one("#result-health", Static).update(
            describe_sample(message.sample, note=["health re-measured after the run"])
        )
        self.query_one("#result-health", Static).styles.margin = (0, 0, 1, 0)
