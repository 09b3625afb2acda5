"""`python -m console.screenshots [FOLDER]`: SVG pictures of every pane and flow.

Built from a fresh demo workspace in a temporary folder, driven by Textual's pilot
exactly as an operator would drive it; the README shows the results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.app import DbrConsole
from core import backups
from core.demo import init_demo
from core.events import TRIGGER_FIRED, Severity
from core.workspace import Workspace

SMALL, LARGE = (80, 24), (160, 48)


def prepare(folder: Path) -> Path:
    """A demo workspace with a history worth looking at."""
    config = init_demo(folder / "demo")
    ws = Workspace.open(config)
    try:
        made = backups.create_backup(ws, "shop", label="before release 42")
        backups.verify_backup(ws, made.id)
        backups.pin(ws, made.id, reason="before release 42")
        backups.create_backup(ws, "shop", label="hourly")
        ws.bus.emit(
            "health.degraded",
            "health degraded: score 62 (threshold 80); orders in the last day failing",
            severity=Severity.WARNING,
            target="shop",
        )
    finally:
        ws.close()
    return config


async def until(pilot: Any, condition: Callable[[], bool], tries: int = 1200) -> None:
    for _ in range(tries):
        await pilot.pause(0.05)
        if condition():
            return
    raise RuntimeError("the console never reached the state to picture")


async def loaded(pilot: Any) -> None:
    screen = pilot.app.screen
    await until(
        pilot,
        lambda: all(
            screen.query_one(f"#{t}").rows
            for t in ("revisions-table", "checks-table", "backups-table")
        ),
    )
    await pilot.pause(0.3)


async def shoot(config: Path, out: Path) -> list[Path]:
    made: list[Path] = []

    def save(app: DbrConsole, name: str) -> None:
        app.save_screenshot(f"{name}.svg", str(out))
        made.append(out / f"{name}.svg")

    app = DbrConsole(Workspace.open(config))
    async with app.run_test(size=LARGE) as pilot:
        await loaded(pilot)
        save(app, "main-160x48")
    for key, name in (
        ("1", "migrations"),
        ("2", "backups"),
        ("3", "health"),
        ("4", "rollback-log"),
    ):
        app = DbrConsole(Workspace.open(config))
        async with app.run_test(size=SMALL) as pilot:
            await loaded(pilot)
            await pilot.press(key)
            await pilot.pause(0.3)
            save(app, f"pane-{name}-80x24")
    app = DbrConsole(Workspace.open(config), read_only=True)
    async with app.run_test(size=SMALL) as pilot:
        await loaded(pilot)
        save(app, "read-only-80x24")
    app = DbrConsole(Workspace.open(config))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"backup")
        await pilot.pause(0.5)
        save(app, "command-palette")
    await flows(config, save)
    return made


async def flows(config: Path, save: Callable[[DbrConsole, str], None]) -> None:
    from console.screens.choose import ChooseScreen
    from console.screens.plan import PlanScreen
    from console.screens.progress import ProgressScreen
    from console.screens.result import ResultScreen

    app = DbrConsole(Workspace.open(config))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.ws.bus.emit(
            TRIGGER_FIRED,
            "trigger 'score stays low' fired (3 of 3 "
            "samples below 60); suggests downgrade:1",
            severity=Severity.WARNING,
            target="shop",
            data={"strategy": "downgrade:1", "mode": "suggest"},
        )
        await until(pilot, lambda: app.screen.suggestion is not None)
        await pilot.pause(0.3)
        save(app, "trigger-banner")
        await pilot.press("o")
        await until(
            pilot,
            lambda: isinstance(app.screen, ChooseScreen) and all(app.screen.plans),
        )
        save(app, "roll-back-or-restore")
        await pilot.press("escape", "1")
        await until(pilot, lambda: len(app.screen.query_one("#revisions-table").rows))
        app.screen.query_one("#revisions-table").move_to("60e91c")
        await pilot.press("d")
        await until(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
        )
        save(app, "downgrade-preview")
        await pilot.press("c", *"sho")
        await pilot.pause(0.3)
        save(app, "downgrade-confirm")
        await pilot.press("p", "enter")
        await until(
            pilot,
            lambda: isinstance(app.screen, ProgressScreen) and app.screen.finished,
        )
        save(app, "downgrade-progress")
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ResultScreen)
                and "measuring"
                not in str(app.screen.query_one("#result-health").render())
            ),
        )
        save(app, "downgrade-result")
        await pilot.press("escape", "2", "P")
        await until(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
        )
        save(app, "prune-preview")
        await pilot.press("escape", "e")
        await until(pilot, lambda: bool(getattr(app.screen, "markdown", "")))
        save(app, "timeline-export")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m console.screenshots", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folder", nargs="?", type=Path, default=Path("screenshots"))
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TZ", "UTC")
    with tempfile.TemporaryDirectory(prefix="dbr-screenshots-") as scratch:
        # Runs' log files go to the scratch folder, not the user's data folder.
        os.environ["XDG_DATA_HOME"] = scratch
        config = prepare(Path(scratch))
        made = asyncio.run(shoot(config, args.folder.absolute()))
    for path in made:
        print(path)


if __name__ == "__main__":
    main()
