"""Each flow of the console driven end to end by its pilot on the demo workspace.

Operations run as the console runs them: in a detached `dbr` process, followed
through the journal; the tests then check the database and the journal.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console import runner
from console.screens.choose import ChooseScreen
from console.screens.confirm import ConfirmScreen
from console.screens.plan import PlanScreen
from console.screens.progress import ProgressScreen
from console.screens.result import ResultScreen
from console.screens.timeline import TimelineScreen
from console.widgets.table import VirtualTable
from core import backups, migrations
from core.demo import init_demo
from core.events import TRIGGER_FIRED, Severity
from core.workspace import Workspace
from tests.console_helpers import open_app, screen_text, settle, warn

pytestmark = pytest.mark.anyio
RUN_TRIES = 1200  # a detached dbr process starts a Python interpreter: be patient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # runs' log files
    return init_demo(tmp_path / "ws")


async def select_revision(app, pilot, revision: str) -> None:
    table = app.screen.query_one("#revisions-table", VirtualTable)
    await settle(pilot, lambda: len(table.rows) > 0, tries=400)
    assert table.move_to(revision)
    await pilot.pause()


async def test_downgrade_flow_preview_confirm_progress_result(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("1")
        await select_revision(app, pilot, "60e91c")
        await pilot.press("d")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        text = screen_text(app)
        assert "DESTROYS DATA" in text
        assert "ALTER TABLE orders DROP COLUMN status" in text
        assert "non-null values" in text  # the risk with its live number
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press(*"shap", "enter")  # a typo is refused
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "nothing was done" in screen_text(app)
        await pilot.press(*"shop", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        progress = app.screen
        await settle(pilot, lambda: progress.finished, tries=RUN_TRIES)
        assert progress.operation["status"] == "succeeded"
        text = screen_text(app)
        assert "safety backup" in text and "downgrade 70fa42" in text
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ResultScreen))
        await settle(pilot, lambda: "measuring" not in screen_text(app), tries=400)
        text = screen_text(app)
        assert "SUCCEEDED" in text
        assert "score" in text  # health re-measured after the run
    ws = Workspace.open(demo)
    try:
        assert migrations.current(ws.target("shop")).heads == ["60e91c"]
        operation = ws.journal.operations("shop", kind="migration.downgrade")[0]
        assert operation["options"]["safety_backup"] is True
        assert any(b.pinned for b in backups.list_backups(ws, "shop"))
    finally:
        ws.close()


def backup_count(config: Path) -> int:
    ws = Workspace.open(config)
    try:
        return len(backups.list_backups(ws, "shop"))
    finally:
        ws.close()


async def test_declining_the_safety_backup_is_shown_and_journaled(demo: Path) -> None:
    before = backup_count(demo)
    app = open_app(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await select_revision(app, pilot, "60e91c")
        await pilot.press("d")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        await pilot.press("s")
        assert "DECLINED" in screen_text(app)
        await pilot.press("c", *"shop", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
    ws = Workspace.open(demo)
    try:
        operation = ws.journal.operations("shop", kind="migration.downgrade")[0]
        assert operation["options"]["safety_backup_declined"] is True
        assert len(backups.list_backups(ws, "shop")) == before  # no safety backup
    finally:
        ws.close()


async def test_read_only_preview_cannot_be_confirmed(demo: Path) -> None:
    app = open_app(demo, read_only=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await select_revision(app, pilot, "60e91c")
        await pilot.press("d")  # a preview changes nothing: it opens
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        assert "read-only: this is a preview only" in screen_text(app)
        await pilot.press("c")  # disabled: no confirmation dialog
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, PlanScreen))
        await pilot.press("o")  # looking at both paths stays possible
        await settle(pilot, lambda: isinstance(app.screen, ChooseScreen))


async def test_backup_create_verify_pin_and_prune_preview(demo: Path) -> None:
    before = backup_count(demo)
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.press("b")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
        assert app.screen.operation["status"] == "succeeded"
        await pilot.press("escape")
        table = app.screen.query_one("#backups-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == before + 1, tries=400)
        table.cursor = 0  # newest first: the one just made
        newest = table.current
        assert newest is not None and newest.text(4) == "- never"
        await pilot.press("v")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
        await pilot.press("escape")
        await settle(pilot, lambda: table.rows[0].text(4) == "✓ yes", tries=400)
        table.cursor = 0
        await pilot.press("p")
        await settle(pilot, lambda: table.rows[0].text(5) == "PINNED", tries=400)
        await pilot.press("P")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        text = screen_text(app)
        assert f"of {before + 1} backups go" in text
        assert "keep" in text and "pinned" in text


async def test_restore_flow_brings_back_the_rows(demo: Path) -> None:
    ws = Workspace.open(demo)
    try:
        made = backups.create_backup(ws, "shop", label="good state")
        with ws.target("shop").engine().begin() as conn:
            conn.exec_driver_sql("delete from order_lines")
    finally:
        ws.close()
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = app.screen.query_one("#backups-table", VirtualTable)
        await settle(pilot, lambda: table.move_to(made.id), tries=400)
        await pilot.press("R")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        text = screen_text(app)
        assert "DESTROYS DATA" in text and "order_lines" in text
        await pilot.press("c", *"shop", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
        assert app.screen.operation["status"] == "succeeded", [
            s.get("error") for s in app.screen.operation["steps"]
        ]
    ws = Workspace.open(demo)
    try:
        with ws.target("shop").engine().connect() as conn:
            rows = conn.exec_driver_sql("select count(*) from order_lines").scalar()
        assert rows == made.tables["order_lines"] > 0
    finally:
        ws.close()


async def test_roll_back_or_restore_shows_both_paths(demo: Path) -> None:
    ws = Workspace.open(demo)
    try:
        made = backups.create_backup(ws, "shop", label="nightly")
        backups.verify_backup(ws, made.id)
    finally:
        ws.close()
    app = open_app(demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, ChooseScreen))
        choose = app.screen
        await settle(pilot, lambda: all(choose.plans), tries=400)
        text = screen_text(app)
        assert "Downgrade migrations" in text and "Restore the latest" in text
        assert "DESTROYS DATA" in text
        await pilot.press("2")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        assert "restore" in screen_text(app).lower()


async def test_fired_trigger_raises_a_banner_that_opens_its_plan(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(
            pilot,
            lambda: (
                app.screen.last_event_id >= 0
                and app.screen.query_one("#journal-table", VirtualTable) is not None
            ),
        )
        await pilot.pause(0.5)
        warn(
            app.ws,
            "shop",
            "trigger 'score stays low' fired (3 of 3 samples below "
            "60); suggests downgrade:1",
            Severity.WARNING,
            kind=TRIGGER_FIRED,
            trigger="score stays low",
            strategy="downgrade:1",
            mode="suggest",
        )
        await settle(pilot, lambda: "TRIGGER FIRED" in screen_text(app), tries=200)
        await pilot.press("f")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        assert "downgrade" in screen_text(app).lower()


async def test_timeline_export_writes_markdown(demo: Path, tmp_path: Path) -> None:
    ws = Workspace.open(demo)
    try:
        backups.create_backup(ws, "shop", label="before the incident")
    finally:
        ws.close()
    target_file = tmp_path / "incident.md"
    app = open_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        # The health sample taken on opening belongs in the window exported.
        await settle(pilot, lambda: "100% >= 80" in screen_text(app), tries=400)
        await pilot.press("e")
        await settle(pilot, lambda: isinstance(app.screen, TimelineScreen))
        await settle(pilot, lambda: bool(app.screen.markdown), tries=400)
        app.screen.query_one("#path").value = str(target_file)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: target_file.exists())
    text = target_file.read_text()
    assert text.startswith("# Incident timeline: shop")
    assert "back up shop" in text and "succeeded" in text
    assert "- Health: lowest score 100%" in text  # the sample taken on opening


async def test_an_operation_outlives_the_console(demo: Path) -> None:
    """A run started by one console goes on after it exits; the next one shows it."""
    app = open_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        run = runner.start(runner.command(demo, ["backups", "create", "shop"]))
        assert os.getsid(run.pid) == run.pid  # its own session: a hangup misses it
        await pilot.press("q")
    assert run.process is not None
    assert run.process.wait(timeout=120) == 0
    app = open_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#journal-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == 1, tries=400)
        assert "back up shop" in screen_text(app)
        assert "✓ succeeded" in screen_text(app)
        await pilot.press("enter")
        await settle(
            pilot,
            lambda: isinstance(app.screen, ProgressScreen) and app.screen.finished,
            tries=400,
        )
        assert "SUCCEEDED: back up shop" in screen_text(app)


async def test_backups_sort_and_filter(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = app.screen.query_one("#backups-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) > 2, tries=400)
        total = len(table.rows)
        await pilot.press("s")  # by age
        ages = [r.value(1) for r in table.rows]
        assert ages == sorted(ages)
        await pilot.press("s")  # by size
        sizes = [r.value(2) for r in table.rows]
        assert sizes == sorted(sizes)
        labelled = sum("nightly" in r.text(3) for r in table.rows)
        await pilot.press("slash", *"nightly")  # a word only labels hold
        await pilot.pause()
        assert 0 < len(table.rows) == labelled < total
        assert all("nightly" in r.text(3) for r in table.rows)
        await pilot.press("escape")
        await pilot.pause()
        assert len(table.rows) == total
        assert table.has_focus


async def test_upgrade_to_a_pending_revision(demo: Path) -> None:
    ws = Workspace.open(demo)
    try:
        target = ws.target("shop")
        plan = migrations.plan(
            target, "60e91c", direction="downgrade", journal=ws.journal
        )
        assert ws.executor.run(plan, target, confirmed=True, safety_backup=False).ok
    finally:
        ws.close()
    app = open_app(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await select_revision(app, pilot, "70fa42")
        assert "· pending" in screen_text(app)
        await pilot.press("u")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        assert "does not destroy data" in screen_text(app)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
        assert app.screen.operation["status"] == "succeeded"
    ws = Workspace.open(demo)
    try:
        assert migrations.current(ws.target("shop")).heads == ["70fa42"]
    finally:
        ws.close()


async def test_a_refused_run_says_why_and_changes_nothing(demo: Path) -> None:
    ws = Workspace.open(demo)
    ws.journal.acquire_lock("shop", "held-by-test", "test.hold")
    try:
        app = open_app(demo)
        async with app.run_test(size=(100, 40)) as pilot:
            await select_revision(app, pilot, "60e91c")
            await pilot.press("d")
            await settle(
                pilot,
                lambda: (
                    isinstance(app.screen, PlanScreen) and app.screen.plan is not None
                ),
                tries=400,
            )
            await pilot.press("c", *"shop", "enter")
            await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
            await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
            text = screen_text(app)
            assert "NOT STARTED" in text and "exit status 3" in text
            assert "lock" in text.lower()
        assert migrations.current(ws.target("shop")).heads == ["70fa42"]
    finally:
        ws.journal.release_lock("shop", "held-by-test")
        ws.close()


async def test_a_running_operation_is_shown_and_followed(demo: Path) -> None:
    """An operation running elsewhere (here: this process) is announced and followed."""
    ws = Workspace.open(demo)
    op = ws.journal.begin(
        "backup.restore",
        "shop",
        "restore shop from backup x",
        plan={"steps": [{"name": "restore"}]},
    )
    step = ws.journal.step_started(op, 0, "restore", "replace shop")
    try:
        app = open_app(demo)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(
                pilot, lambda: "RUNNING: restore shop" in screen_text(app), tries=400
            )
            assert any("is running" in str(n.message) for n in app._notifications)
            await pilot.press("4")
            table = app.screen.query_one("#journal-table", VirtualTable)
            await settle(pilot, lambda: table.move_to(op), tries=400)
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
            await settle(pilot, lambda: "▶ running" in screen_text(app), tries=400)
            ws.journal.step_finished(step, "succeeded")
            ws.journal.finish(op, "succeeded")
            await settle(pilot, lambda: app.screen.finished, tries=400)
            assert "SUCCEEDED: restore shop" in screen_text(app)
    finally:
        ws.close()


async def test_deep_verify_marks_the_backup(demo: Path) -> None:
    ws = Workspace.open(demo)
    try:
        made = backups.create_backup(ws, "shop", label="to check")
    finally:
        ws.close()
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = app.screen.query_one("#backups-table", VirtualTable)
        await settle(pilot, lambda: table.move_to(made.id), tries=400)
        await pilot.press("V")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=RUN_TRIES)
        assert app.screen.operation["status"] == "succeeded"
        await pilot.press("escape")
        await settle(
            pilot,
            lambda: any(r.key == made.id and r.text(4) == "✓ deep" for r in table.rows),
            tries=400,
        )
