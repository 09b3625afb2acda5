"""Snapshots of every pane and each flow's screens, at 80x24 and 160x48.

The workspace is the demo with what changes from run to run held still: health
checks that time the server are disabled, the journal's rows and events carry
fixed times, the catalog is empty (backup ids are random), and the clock is UTC.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console.screens.choose import ChooseScreen
from console.screens.confirm import ConfirmScreen
from console.screens.plan import PlanScreen
from console.widgets.table import VirtualTable
from core.demo import init_demo
from core.events import Event, Severity
from core.state import backups, operations, steps
from core.workspace import Workspace
from tests.console_helpers import open_app

SIZES = [(80, 24), (160, 48)]
WHEN = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def still_demo(tmp_path: Path) -> Iterator[Path]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    config = init_demo(tmp_path / "ws")
    text = config.read_text().replace(
        "threshold = 80\n", 'threshold = 80\ndisable = ["latency", "round trip"]\n', 1
    )
    config.write_text(text)
    ws = Workspace.open(config)
    try:
        journal = ws.journal
        op = journal.begin(
            "migration.downgrade",
            "shop",
            "downgrade shop to 60e91c",
            operation_id="0a1b2c3d4e5f",
            plan={"steps": [{"name": "downgrade 70fa42"}]},
        )
        step = journal.step_started(op, 0, "downgrade 70fa42", "70fa42 -> 60e91c")
        journal.step_finished(step, "succeeded", detail={"revision": "70fa42"})
        journal.finish(op, "succeeded")
        with ws.store.engine.begin() as conn:  # fixed times, for still pictures
            # Backups have random ids and sizes: the pilot tests cover them.
            conn.execute(backups.delete())
            conn.execute(
                operations.update().values(
                    started_at=WHEN,
                    finished_at=WHEN + timedelta(seconds=4),
                    duration=4.0,
                    user="oncall",
                    host="bastion",
                    pid=4242,
                    ssh_client=None,
                )
            )
            conn.execute(
                steps.update().values(
                    started_at=WHEN,
                    finished_at=WHEN + timedelta(seconds=4),
                    duration=4.0,
                )
            )
        for minutes, severity, message in (
            (-20, Severity.WARNING, "health degraded: orders in the last day 0"),
            (-12, Severity.CRITICAL, "trigger 'score stays low' fired"),
            (0, Severity.INFO, "downgrade shop to 60e91c succeeded"),
        ):
            journal.record(
                Event(
                    "note",
                    message,
                    severity,
                    target="shop",
                    at=WHEN + timedelta(minutes=minutes),
                )
            )
    finally:
        ws.close()
    yield config
    if previous is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = previous
    time.tzset()


def loaded(*panes: str) -> Callable[[Any], Any]:
    """A run_before that waits until the main screen's panes have their data."""

    async def wait(pilot: Any) -> None:
        app = pilot.app
        for _ in range(400):
            await pilot.pause(0.05)
            tables = [
                app.screen.query_one(f"#{t}", VirtualTable)
                for t in ("revisions-table", "checks-table", "journal-table")
            ]
            if all(t.rows for t in tables):
                break
        for pane in panes:
            await pilot.press(pane)
        await pilot.pause(0.2)

    return wait


def until(condition: Callable[[Any], bool], *keys: str) -> Callable[[Any], Any]:
    async def wait(pilot: Any) -> None:
        await loaded()(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.1)
        for _ in range(400):
            await pilot.pause(0.05)
            if condition(pilot.app):
                break
        await pilot.pause(0.2)

    return wait


# At 160x48 every pane is on screen at once: one picture holds all four.
@pytest.mark.parametrize(
    ("pane", "size"),
    [
        ("1", (80, 24)),
        ("2", (80, 24)),
        ("3", (80, 24)),
        ("4", (80, 24)),
        ("1", (160, 48)),
    ],
    ids=["1-80x24", "2-80x24", "3-80x24", "4-80x24", "1-160x48"],
)
def test_main_screen_panes(
    snap_compare: Any, still_demo: Path, pane: str, size: tuple[int, int]
) -> None:
    assert snap_compare(
        open_app(still_demo), terminal_size=size, run_before=loaded(pane)
    )


def test_read_only_main_screen(snap_compare: Any, still_demo: Path) -> None:
    assert snap_compare(
        open_app(still_demo, read_only=True),
        terminal_size=(80, 24),
        run_before=loaded("1"),
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_downgrade_preview(
    snap_compare: Any, still_demo: Path, size: tuple[int, int]
) -> None:
    def ready(app: Any) -> bool:
        return isinstance(app.screen, PlanScreen) and app.screen.plan is not None

    assert snap_compare(
        open_app(still_demo),
        terminal_size=size,
        run_before=until(ready, "1", "down", "d"),
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_destructive_confirmation(
    snap_compare: Any, still_demo: Path, size: tuple[int, int]
) -> None:
    def ready(app: Any) -> bool:
        return isinstance(app.screen, PlanScreen) and app.screen.plan is not None

    async def run_before(pilot: Any) -> None:
        await until(ready, "1", "down", "d")(pilot)
        await pilot.press("c")
        for _ in range(100):
            await pilot.pause(0.05)
            if isinstance(pilot.app.screen, ConfirmScreen):
                break
        await pilot.press(*"sho")
        await pilot.pause(0.2)

    assert snap_compare(open_app(still_demo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_roll_back_or_restore(
    snap_compare: Any, still_demo: Path, size: tuple[int, int]
) -> None:
    def ready(app: Any) -> bool:
        screen = app.screen
        return isinstance(screen, ChooseScreen) and "planning…" not in "".join(
            str(s.render()) for s in screen.query(".choice Static")
        )

    assert snap_compare(
        open_app(still_demo), terminal_size=size, run_before=until(ready, "o")
    )


def test_no_color_main_screen(
    snap_compare: Any, still_demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(
        open_app(still_demo), terminal_size=(80, 24), run_before=loaded("3")
    )
