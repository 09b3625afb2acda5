"""Progress of an operation that runs in its own process, followed via the journal.

The same screen follows a run this console started and one found running when the
console opened (after an SSH drop, say): both are journal entries with a pid.
"""

from __future__ import annotations

import os
import signal
import socket
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from humanize import naturalsize
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, RichLog, Static

from console import messages as msg
from console.format import clock, seconds, status
from console.runner import Run

POLL = 0.5
FIND_WITHIN = timedelta(seconds=5)


class ProgressScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel", "Cancel between steps"),
        Binding("enter", "result", "Result"),
        Binding("escape", "leave", "Back (it keeps running)"),
        Binding("escape", "back", "Back"),  # once finished: nothing keeps running
    ]

    def __init__(
        self,
        target: str,
        *,
        run: Run | None = None,
        operation_id: str | None = None,
        plan: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.run = run
        self.operation_id = operation_id
        self.planned = [s["name"] for s in (plan or {}).get("steps", [])]
        self.title_text = (plan or {}).get("title", "operation")
        self.operation: dict[str, Any] | None = None
        self.events_seen = 0
        self.cancel_asked = False
        self.polling = False

    def compose(self) -> ComposeResult:
        yield Static(
            f"Running: {self.title_text}", classes="title", id="progress-title"
        )
        yield ProgressBar(
            total=max(1, len(self.planned)), show_eta=False, id="progress-bar"
        )
        yield Static("starting…", id="progress-times")
        yield Static("", id="progress-steps")
        yield RichLog(id="progress-log", max_lines=1000, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(POLL, self.poll)
        self.poll()

    def poll(self) -> None:
        if not self.polling and not self.finished:
            self.polling = True
            self.follow()

    @property
    def finished(self) -> bool:
        return self.operation is not None and self.operation["status"] != "running"

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def follow(self) -> None:
        journal = self.app.ws.journal
        try:
            if self.operation_id is None and self.run is not None:
                since = self.run.started_at - FIND_WITHIN
                found = [
                    o
                    for o in journal.operations(self.target, since=since)
                    if o["pid"] == self.run.pid
                ]
                if not found:
                    self.post_message(msg.OperationFollowed({}))
                    return
                self.operation_id = found[-1]["id"]
            operation = (
                journal.operation(self.operation_id) if self.operation_id else {}
            )
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            operation = {"poll_error": f"{type(exc).__name__}: {exc}"}
        self.post_message(msg.OperationFollowed(operation))

    def on_operation_followed(self, message: msg.OperationFollowed) -> None:
        self.polling = False
        operation = message.operation
        if "poll_error" in operation:
            self.query_one("#progress-times", Static).update(
                f"cannot read the journal right now ({operation['poll_error']}); "
                "the operation carries on in its own process"
            )
            return
        if not operation:
            self._not_started()
            return
        ended = {
            s["id"]
            for s in (self.operation or {}).get("steps") or []
            if s["status"] != "running"
        }
        for step in operation.get("steps") or []:
            if step["status"] != "running" and step["id"] not in ended:
                self.post_message(msg.StepFinished(operation["id"], step))
        self.operation = operation
        if not self.planned:
            self.planned = [
                s["name"] for s in (operation.get("plan") or {}).get("steps", [])
            ]
        self.title_text = operation["title"]
        self._show(operation)

    def _not_started(self) -> None:
        run = self.run
        if run is None or run.alive():
            return  # still starting up
        tail = _tail(run.log_path)
        self.operation = {
            "status": "failed",
            "id": None,
            "steps": [],
            "error": tail or "the run ended before it was journaled",
        }
        self.query_one("#progress-title", Static).update(
            f"NOT STARTED: {self.title_text} (exit status {run.exit_code()})"
        )
        self.query_one("#progress-times", Static).update(
            "nothing was changed; what the run said:"
        )
        self.query_one(RichLog).write(tail or "(no output)")
        self.refresh_bindings()

    def _show(self, operation: dict[str, Any]) -> None:
        steps = operation.get("steps") or []
        done = [s for s in steps if s["status"] not in ("running",)]
        total = max(
            len(self.planned)
            + (1 if (operation.get("options") or {}).get("safety_backup") else 0),
            len(steps),
            1,
        )
        running = [s for s in steps if s["status"] == "running"]
        checking = (
            operation["status"] == "running" and not running and len(done) >= total
        )
        bar = self.query_one(ProgressBar)
        if checking:
            # Steps done, the post-checks (health recovery, say) still waiting:
            # not 100 %, so the bar pulses instead.
            bar.update(total=None)
        else:
            bar.update(total=total, progress=len(done))
        started = datetime.fromisoformat(operation["started_at"])
        elapsed = (
            operation["duration"]
            if operation.get("duration") is not None
            else (datetime.now(UTC) - started).total_seconds()
        )
        words, _ = status(operation["status"])
        times = f"{words} · elapsed {seconds(elapsed)}"
        if checking:
            checks = (operation.get("plan") or {}).get("postconditions") or []
            times += (
                " · all steps done; checking afterwards"
                + (f": {'; '.join(checks)}" if checks else "")
                + " (measuring recovery…)"
            )
            if self.cancel_asked:
                times += " · CANCEL ASKED: stops after the current step"
        elif operation["status"] == "running":
            times += f" · {_eta(operation, steps, total, elapsed)}"
            times += _inside_step(operation, steps)
            if self.cancel_asked:
                times += " · CANCEL ASKED: stops after the current step"
        else:
            times += " · press enter for the result"
        self.query_one("#progress-times", Static).update(times)
        lines = Text()
        ran = {s["name"] for s in steps}
        rows = [(s["name"], s) for s in steps]
        rows += [(name, None) for name in self.planned if name not in ran]
        for number, (name, step) in enumerate(rows, start=1):
            state, _ = status(step["status"] if step else "pending")
            took = (
                f" ({seconds(step['duration'])})" if step and step["duration"] else ""
            )
            lines.append(f" {number}. {state:<14} {name}{took}\n")
        self.query_one("#progress-steps", Static).update(lines)
        log = self.query_one(RichLog)
        for event in (operation.get("events") or [])[self.events_seen :]:
            if event["kind"] == "step.progress":
                continue  # shown on the times line, not as log lines
            log.write(f"{clock(event['at'])} {event['severity']:<8} {event['message']}")
        self.events_seen = len(operation.get("events") or [])
        if self.finished:
            self.query_one("#progress-title", Static).update(
                f"{words.upper()}: {self.title_text}"
            )
            self.refresh_bindings()

    def on_step_finished(self, message: msg.StepFinished) -> None:
        step = message.step
        if step["status"] == "failed":
            self.app.notify(
                f"step {step['name']} failed: {step.get('error')}",
                severity="error",
                timeout=15,
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            if self.finished:
                return False  # hidden: there is nothing left to cancel
            return None if self.cancel_asked else True
        if action == "leave":
            return not self.finished
        if action == "back":
            return self.finished
        if action == "result":
            return True if self.finished else None
        return True

    def action_cancel(self) -> None:
        if self.run is not None:
            self.run.stop_between_steps()
        elif self.operation and self.operation.get("pid"):
            if self.operation.get("host") != socket.gethostname():
                # A pid means nothing on another host: never signal one here.
                self.app.notify(
                    f"this operation runs on {self.operation['host']}: cancel it there",
                    severity="warning",
                )
                return
            try:
                os.kill(self.operation["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.cancel_asked = True
        self.app.notify(
            "cancel asked: the operation stops after its current step",
            severity="warning",
        )
        self.refresh_bindings()

    def action_result(self) -> None:
        from console.screens.result import ResultScreen

        if self.operation is not None:
            self.app.switch_screen(ResultScreen(self.target, self.operation))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_leave(self) -> None:
        if not self.finished:
            self.app.notify(
                "the operation keeps running in its own process; the "
                "rollback log shows it"
            )
        self.app.pop_screen()


def _eta(
    operation: dict[str, Any], steps: list[dict[str, Any]], total: int, elapsed: float
) -> str:
    estimate = (operation.get("plan") or {}).get("estimate")
    if estimate:
        left = estimate - elapsed
        if left <= 0:
            return "taking longer than past runs (time left unknown)"
        return f"about {seconds(left)} left (from past runs)"
    finished = [s for s in steps if s.get("duration") is not None]
    if finished:
        mean = sum(s["duration"] for s in finished) / len(finished)
        return f"about {seconds(mean * (total - len(finished)))} left (guess)"
    return "time left unknown (no past runs)"


def _inside_step(operation: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    """How far the running step has got, from its last journaled progress event."""
    running = [s["name"] for s in steps if s["status"] == "running"]
    progress = [
        e
        for e in operation.get("events") or []
        if e["kind"] == "step.progress"
        and running
        and (e.get("data") or {}).get("step") == running[-1]
    ]
    if not progress:
        return ""
    data = progress[-1]["data"]
    done, total = data.get("done"), data.get("total")
    if done is None:
        return ""

    def amount(value: float) -> str:
        if data.get("unit") == "bytes":
            return naturalsize(value, binary=True)
        return f"{value:,.0f}"

    if not total:
        return f" · {running[-1]}: {amount(done)} so far"
    return f" · {running[-1]}: {amount(done)} of {amount(total)} ({done / total:.0%})"


def _tail(path: Any, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
