"""Incident timeline export: choose a window, preview the Markdown, write it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Markdown, Static

from console import messages as msg
from console.engines import engine
from core import timeline
from core.config import DURATION_RE, DURATION_UNITS


class TimelineScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "write", "Write file"),
        Binding("ctrl+r", "preview", "Preview"),
    ]

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.markdown = ""

    def compose(self) -> ComposeResult:
        yield Static(
            f"Incident timeline for {self.target}: the journal, alerts and "
            "health samples of a window, as Markdown",
            classes="title",
        )
        with Horizontal(classes="form"):
            yield Label("last")
            yield Input("2h", id="window", placeholder="30m, 2h, 1d")
            yield Label("file")
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
            yield Input(f"incident-{self.target}-{stamp}.md", id="path")
        yield Static("", id="timeline-status")
        with VerticalScroll(id="timeline-preview"):
            yield Markdown("")
        yield Footer()

    def on_mount(self) -> None:
        self.action_preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "window":
            self.action_preview()
        else:
            self.action_write()

    def _window(self) -> tuple[datetime, datetime] | None:
        text = self.query_one("#window", Input).value.strip()
        match = DURATION_RE.match(text)
        if not match:
            self.query_one("#timeline-status", Static).update(
                f"window {text!r} is not a duration: write it like 30m, 2h or 1d"
            )
            return None
        until = datetime.now(UTC)
        return until - timedelta(
            seconds=int(match[1]) * DURATION_UNITS[match[2]]
        ), until

    def action_preview(self) -> None:
        window = self._window()
        if window is not None:
            self.query_one("#timeline-status", Static).update("gathering…")
            self.gather(*window)

    @work(thread=True, exclusive=True, group="timeline", exit_on_error=False)
    def gather(self, since: datetime, until: datetime) -> None:
        journal = self.app.ws.journal
        try:
            operations = [
                journal.operation(o["id"])
                for o in journal.operations(
                    self.target, since=since, until=until, limit=0
                )
            ]
            events = journal.events(self.target, since=since, until=until, limit=5000)
            samples = _samples(self.app.ws, self.target, since, until)
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(
                msg.PaneFailed(
                    "timeline", self.target, "cannot read the journal", str(exc)
                )
            )
            return
        text = timeline.build(
            self.target,
            since,
            until,
            operations=operations,
            events=events,
            samples=samples,
        )
        self.post_message(msg.TimelineBuilt(text))

    def on_timeline_built(self, message: msg.TimelineBuilt) -> None:
        self.markdown = message.markdown
        self.query_one(Markdown).update(self.markdown)
        self.query_one("#timeline-status", Static).update(
            "preview below; ctrl+s writes the file"
        )

    def on_pane_failed(self, message: msg.PaneFailed) -> None:
        self.query_one("#timeline-status", Static).update(
            f"{message.title}: {message.detail}"
        )

    def action_write(self) -> None:
        if not self.markdown:
            self.action_preview()
            return
        path = Path(self.query_one("#path", Input).value.strip()).expanduser()
        try:
            path.write_text(self.markdown, encoding="utf-8")
        except OSError as exc:
            self.query_one("#timeline-status", Static).update(
                f"cannot write {path}: {exc.strerror}; choose another file"
            )
            return
        self.post_message(msg.TimelineExported(str(path.absolute())))

    def on_timeline_exported(self, message: msg.TimelineExported) -> None:
        self.query_one("#timeline-status", Static).update(f"written: {message.path}")
        self.app.notify(f"incident timeline written to {message.path}")


def _samples(ws: Any, target: str, since: datetime, until: datetime) -> list[dict]:
    """The health samples kept for target; core.timeline keeps the window's."""
    health = engine("health")
    if health is None:
        return []
    kept = ws.settings.targets[target].health.keep_samples
    return [
        s.to_dict()
        for s in health.recent_samples(ws, target, limit=kept)
        if since <= s.at <= until
    ]
