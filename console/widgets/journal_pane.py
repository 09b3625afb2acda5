"""The Rollback log pane: the journal's operations and the selected one's detail."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.format import ago, clock, seconds, short, status
from console.widgets.pane import Pane
from console.widgets.table import Column, Row, VirtualTable

COLUMNS = [
    Column("started", "started", max_width=16),
    Column("kind", "kind", max_width=20),
    Column("status", "status", width=14),
    Column("took", "took", max_width=10, align="right"),
    Column("user", "by", max_width=12),
    Column("title", "what", max_width=60),
]


class JournalPane(Pane):
    TITLE = "Rollback log"
    KEY = "4"

    def compose(self) -> ComposeResult:
        yield self.notice
        yield VirtualTable(
            COLUMNS, empty="the journal is empty for this target", id="journal-table"
        )
        with VerticalScroll(id="journal-detail-box", can_focus=False):
            yield Static("", id="journal-detail")

    def show_operations(self, operations: list[dict[str, Any]]) -> None:
        rows = [
            Row(
                op["id"],
                (
                    ago(op["started_at"]),
                    op["kind"],
                    status(op["status"]),
                    seconds(op["duration"]),
                    op.get("user") or "-",
                    op["title"],
                ),
                (
                    op["started_at"],
                    op["kind"],
                    op["status"],
                    op["duration"] or 0,
                    op.get("user") or "",
                    op["title"],
                ),
            )
            for op in operations
        ]
        self.query_one(VirtualTable).set_rows(rows)

    def show_detail(self, op: dict[str, Any] | None) -> None:
        self.query_one("#journal-detail", Static).update(
            describe_operation(op) if op else ""
        )


def describe_operation(op: dict[str, Any]) -> Group:
    """An operation as the journal knows it: who, when, each step, events, outcome."""
    words, _ = status(op["status"])
    head = Text()
    head.append(f"{op['id']} ", style="bold")
    head.append(f"{op['title']}\n")
    head.append(
        f"{words} · {op['kind']} · started {ago(op['started_at'])} · took "
        f"{seconds(op['duration'])}\n"
    )
    place = f"{op.get('user')}@{op.get('host')}"
    if op.get("ssh_client"):
        place += f" from {op['ssh_client']}"
    head.append(f"by {place} (pid {op.get('pid')})\n")
    for key, value in (op.get("options") or {}).items():
        if value not in (None, False, {}, []):
            head.append(f"option {key.replace('_', ' ')}: {value}\n", style="dim")
    if op.get("error"):
        head.append(f"error: {op['error']}\n", style="bold red")
    lines = [head]
    ran = {s["name"] for s in op.get("steps", [])}
    steps = Text()
    for step in op.get("steps", []):
        mark, _ = status(step["status"])
        steps.append(
            f" {step['position'] + 1}. {mark:<14} {step['name']} "
            f"({seconds(step['duration'])})"
        )
        if step.get("error"):
            steps.append(f": {step['error']}", style="red")
        steps.append("\n")
    planned = [s["name"] for s in (op.get("plan") or {}).get("steps", [])]
    missing = [name for name in planned if name not in ran]
    if missing:
        steps.append(" not run: " + ", ".join(missing) + "\n", style="dim")
    lines.append(steps)
    result = op.get("result") or {}
    for check in result.get("postconditions") or []:
        mark = "ok" if check.get("ok") else "FAILED"
        lines.append(Text(f" [{mark}] {check.get('check')}: {check.get('detail')}"))
    for key, value in (result.get("report") or {}).items():
        lines.append(
            Text(f" {key.replace('_', ' ')}: {short(value, 200)}", style="yellow")
        )
    events = op.get("events") or []
    if events:
        text = Text("events:\n", style="dim")
        for event in events[-12:]:
            text.append(
                f" {clock(event['at'])} {event['severity']:<8} "
                f"{short(event['message'], 120)}\n"
            )
        lines.append(text)
    return Group(*lines)
