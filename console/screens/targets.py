"""The target switcher: every target with its dialect and score."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class TargetsScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Back"),
    ]

    def __init__(
        self, names: list[str], current: str, scores: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.names = names
        self.current = current
        self.scores = scores or {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Switch target (enter to choose, escape to stay)")
            yield OptionList(
                *(
                    Option(
                        f"{'▸' if n == self.current else ' '} {n}  "
                        f"{self.scores.get(n, '')}",
                        id=n,
                    )
                    for n in self.names
                )
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = self.names.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
