"""Pruning from the console: tag backups with space, preview, confirm, agree.

The pilot drives the real app on the demo workspace; the removal runs as the
console runs it, in a detached `dbr` process, and the test then reads the catalog
and the backup folder as an operator would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console.format import size
from console.screens.confirm import ConfirmScreen
from console.screens.progress import ProgressScreen
from console.screens.prune import PruneScreen
from console.widgets.table import VirtualTable
from core import backups
from core.backups import Backup
from core.demo import init_demo
from core.workspace import Workspace
from tests.console_helpers import open_app, screen_text, settle

pytestmark = pytest.mark.anyio
RUN_TRIES = 1200  # a detached dbr process starts a Python interpreter: be patient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # runs' log files
    return init_demo(tmp_path / "ws")


def catalog(config: Path) -> tuple[list[Backup], Path]:
    ws = Workspace.open(config)
    try:
        return (
            backups.list_backups(ws, "shop"),
            Path(ws.settings.target("shop").backup_dir),
        )
    finally:
        ws.close()


def roles(listed: list[Backup]) -> tuple[Backup, Backup, list[Backup]]:
    """The pinned backup, the newest verified one, and the others oldest first."""
    pinned = next(b for b in listed if b.pinned)
    verified = next(b for b in listed if b.verified)  # listed newest first
    others = [b for b in reversed(listed) if b.id not in (pinned.id, verified.id)]
    return pinned, verified, others


async def tag(app, pilot, table: VirtualTable, backup_id: str) -> None:
    assert table.move_to(backup_id)
    await pilot.press("space")
    await settle(pilot, lambda: backup_id in app.screen.query_one("#backups").tagged)


async def test_tagged_backups_are_removed_and_the_protected_ones_refused(
    demo: Path,
) -> None:
    listed, folder = catalog(demo)
    pinned, verified, others = roles(listed)
    doomed = others[:2]
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = app.screen.query_one("#backups-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == len(listed), tries=400)
        for backup in (*doomed, pinned, verified):
            await tag(app, pilot, table, backup.id)
        assert sum(row.text(0) == "DEL" for row in table.rows) == 4

        await pilot.press("P")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PruneScreen) and app.screen.plan is not None,
            tries=400,
        )
        assert app.screen.plan.kind == "backup.remove"
        text = screen_text(app)
        freed = sum(b.size for b in doomed)
        assert f"2 of {len(listed)} backups go, {size(freed)} freed" in text
        assert f"({freed:,} bytes)" in text
        assert "2 tagged cannot be removed and stay" in text
        lines = {
            b.id: next(
                line
                for line in text.splitlines()
                if b.id in line and ("REMOVE" in line or "REFUSED" in line)
            )
            for b in (*doomed, pinned, verified)
        }
        for backup in doomed:
            assert "REMOVE" in lines[backup.id]
            assert "chosen by the operator" in lines[backup.id]
        assert "REFUSED" in lines[pinned.id] and "pinned" in lines[pinned.id]
        assert "REFUSED" in lines[verified.id]
        assert "refused: the newest verified" in lines[verified.id]

        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "DESTROYS DATA" in screen_text(app)  # the target's name is typed
        await pilot.press(*"sho", "enter")  # a wrong name does nothing
        await settle(pilot, lambda: "is not 'shop'" in screen_text(app))
        assert len(catalog(demo)[0]) == len(listed)
        await pilot.press(*"shop", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
        operation = app.screen.operation
        assert operation["status"] == "succeeded", [
            s.get("error") for s in operation["steps"]
        ]
        assert operation["kind"] == "backup.remove"

        await pilot.press("escape")
        table = app.screen.query_one("#backups-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == len(listed) - 2, tries=400)
        pane = app.screen.query_one("#backups")
        assert pane.tagged == {pinned.id, verified.id}  # still tagged, still there

    after, _ = catalog(demo)
    assert {b.id for b in after} == {b.id for b in listed} - {b.id for b in doomed}
    assert pinned.id in {b.id for b in after} and verified.id in {b.id for b in after}
    assert sorted(p.name for p in folder.glob("*.zst")) == sorted(
        b.path.name for b in after
    )
    assert sorted(p.name for p in folder.glob("*.manifest.json")) == sorted(
        b.manifest_path.name for b in after
    )


async def test_the_retention_policy_can_be_added_to_the_tagged(demo: Path) -> None:
    listed, _ = catalog(demo)
    others = roles(listed)[2]
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = app.screen.query_one("#backups-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == len(listed), tries=400)
        await tag(app, pilot, table, others[0].id)
        await pilot.press("P")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PruneScreen) and app.screen.plan is not None,
            tries=400,
        )
        assert "retention policy: not applied" in screen_text(app)
        await pilot.press("r")
        await settle(
            pilot,
            lambda: (
                app.screen.plan is not None and app.screen.plan.kind == "backup.prune"
            ),
            tries=400,
        )
        text = screen_text(app)
        assert "retention policy: applied too" in text
        assert "and prune by its retention policy" in text
        line = next(x for x in text.splitlines() if others[0].id in x)
        assert "REMOVE" in line and "chosen by the operator" in line
        await pilot.press("escape")
    assert len(catalog(demo)[0]) == len(listed)  # a preview changes nothing
