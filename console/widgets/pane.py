"""A pane of the main screen: a titled box that can say why it has nothing to show."""

from __future__ import annotations

from textual.containers import Vertical
from textual.widgets import Static


class Pane(Vertical):
    """Base of the four panes; `notice` replaces silence with a reason."""

    DEFAULT_CSS = """
    Pane > .pane-notice { display: none; color: $warning; padding: 0 1; }
    Pane.-notice > .pane-notice { display: block; }
    """
    TITLE = ""
    KEY = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = f"{self.KEY} {self.TITLE}"
        self.notice = Static("", classes="pane-notice")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        from console.actions import CHANGING

        if action in CHANGING and getattr(self.app, "read_only", False):
            return None  # shown greyed out in the footer: read-only mode
        return True

    def say(self, text: str) -> None:
        """Show a notice at the top of the pane (not available, failed, loading)."""
        self.notice.update(text)
        self.set_class(bool(text), "-notice")
