"""The confirmation: y to go ahead, or the target's name when data is destroyed."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """True only on an explicit yes; a destructive plan needs the target typed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(
        self, title: str, target: str, destructive: bool, consequences: str = ""
    ) -> None:
        super().__init__()
        self.title_text = title
        self.target = target
        self.destructive = destructive
        self.consequences = consequences

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Static(f"Confirm: {self.title_text}", classes="title")
            if self.consequences:
                # Scrolls when long: every consequence stays reachable.
                with VerticalScroll(id="confirm-consequences"):
                    yield Static(self.consequences)
            if self.destructive:
                yield Static(
                    f"This plan DESTROYS DATA on {self.target}. Type the "
                    f"target's name ({self.target}) and press enter to go "
                    "ahead; escape cancels."
                )
                yield Input(placeholder=self.target, id="confirm-name")
                yield Static("", id="confirm-problem")
            else:
                yield Static("Press y to go ahead, n or escape to cancel.")

    def on_mount(self) -> None:
        if self.destructive:
            self.query_one(Input).focus()

    def on_key(self, event: Key) -> None:
        if self.destructive:
            return
        if event.key == "y":
            event.stop()
            self.dismiss(True)
        elif event.key == "n":
            event.stop()
            self.dismiss(False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.target:
            self.dismiss(True)
            return
        self.query_one("#confirm-problem", Static).update(
            f"{event.value!r} is not {self.target!r}: nothing was done. Type the "
            "name exactly, or press escape."
        )
        event.input.value = ""

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
