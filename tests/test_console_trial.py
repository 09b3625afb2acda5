"""Defects a fresh operator found in the console, each driven through the pilot."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Footer

from console.app import demo_config, parse_args
from console.screens.confirm import ConfirmScreen
from console.screens.main import MainScreen
from console.screens.plan import PlanScreen
from console.screens.progress import ProgressScreen
from console.screens.targets import TargetsScreen
from console.widgets.table import VirtualTable
from core.demo import init_demo
from core.plans import Context, Plan, Postcondition, Step
from tests.console_helpers import (
    count_orders_plan,
    open_app,
    run_plan,
    screen_text,
    settle,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # runs' log files
    return init_demo(tmp_path / "ws")


def notices(app: Any) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


def footer_keys(app: Any) -> dict[str, bool]:
    """Each key the footer shows, and whether it is shown enabled."""
    footer = app.screen.query_one(Footer)
    return {
        key.key: not key.has_class("-disabled") for key in footer.query("FooterKey")
    }


async def rows_of(pilot: Any, app: Any, table_id: str, at_least: int = 1) -> Any:
    table = app.screen.query_one(f"#{table_id}", VirtualTable)
    await settle(pilot, lambda: len(table.rows) >= at_least, tries=400)
    return table


async def test_backup_detail_follows_the_cursor_and_the_filter(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = await rows_of(pilot, app, "backups-table", 5)
        second = table.rows[1].key
        await pilot.press("down")
        await pilot.pause()
        assert table.current.key == second
        assert second in screen_text(app)  # the detail names the highlighted backup
        await pilot.press("slash", *"catalo", "enter")
        await pilot.pause()
        shown = [r.key for r in table.rows]
        assert second not in shown and len(shown) == 1
        text = screen_text(app)
        assert shown[0] in text and second not in text
        # An action acts on what the detail shows: p unpins the catalog backup.
        await pilot.press("p")
        await settle(
            pilot, lambda: f"backup {shown[0]} unpinned" in notices(app), tries=400
        )


async def test_revision_detail_follows_the_cursor(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await rows_of(pilot, app, "revisions-table", 8)
        assert table.move_to("60e91c")
        await pilot.pause()
        text = screen_text(app)
        assert "60e91c  lowercase customer emails" in text
        await pilot.press("down")
        await pilot.pause()
        below = table.current.key
        assert f"{below}  " in screen_text(app)
        assert "60e91c  lowercase" not in screen_text(app)


async def test_switching_to_a_target_without_alembic_clears_the_old_history(
    demo: Path,
) -> None:
    plain = demo.parent / "plain.db"
    with sqlite3.connect(plain) as conn:
        conn.execute("create table notes (id integer primary key, body text)")
    with demo.open("a") as config:
        config.write('\n[targets.plain]\nurl = "sqlite:///plain.db"\n')
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await rows_of(pilot, app, "revisions-table", 8)
        await pilot.press("2")
        await rows_of(pilot, app, "backups-table", 5)
        await pilot.press("1")
        assert "database at 70fa42" in screen_text(app)
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, TargetsScreen))
        await pilot.press("down", "enter")
        await settle(
            pilot,
            lambda: (
                isinstance(app.screen, MainScreen)
                and "plain has no Alembic project" in screen_text(app)
            ),
            tries=400,
        )
        text = screen_text(app)
        assert "database at" not in text and "70fa42" not in text
        assert not app.screen.query_one("#revisions-table", VirtualTable).rows
        await pilot.press("2")
        await pilot.pause()
        assert "before the loyalt" not in screen_text(app)  # shop's backups gone


async def test_read_only_disables_changes_visibly_and_says_so(demo: Path) -> None:
    app = open_app(demo, read_only=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        await rows_of(pilot, app, "backups-table", 5)
        keys = footer_keys(app)
        assert keys["b"] is False and keys["v"] is False and keys["P"] is False
        assert keys["slash"] is True
        await pilot.press("b")
        await settle(
            pilot, lambda: "read-only: Create a backup is disabled" in notices(app)
        )
        # A preview changes nothing: d still shows it, with Confirm disabled.
        await pilot.press("1")
        table = await rows_of(pilot, app, "revisions-table", 8)
        assert table.move_to("60e91c")
        await pilot.press("d")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        assert "ALTER TABLE orders DROP COLUMN status" in screen_text(app)
        keys = footer_keys(app)
        assert keys["c"] is False and keys["s"] is False
        await pilot.press("c")
        await settle(pilot, lambda: "read-only: Confirm is disabled" in notices(app))
        assert isinstance(app.screen, PlanScreen)  # no confirmation dialog


async def test_typed_confirmation_shows_every_critical_risk(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(120, 50)) as pilot:
        table = await rows_of(pilot, app, "revisions-table", 8)
        assert table.move_to("10a1f3")
        await pilot.press("d")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=400,
        )
        critical = [r for r in app.screen.plan.risks if r.severity == "critical"]
        assert len(critical) > 3
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert f"{len(critical)} CRITICAL risks" in text
        total = sum(r.rows for r in critical)
        assert f"{total:,} rows at risk" in text
        for table_name in ("orders", "reviews", "order_lines", "customers", "staff"):
            assert f"drops table {table_name}" in text


async def test_upgrade_to_an_applied_revision_is_refused_up_front(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await rows_of(pilot, app, "revisions-table", 8)
        assert table.move_to("70fa42")  # the current head
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        assert table.move_to("60e91c")
        await pilot.press("u")
        await pilot.pause()
        said = notices(app)
        assert "70fa42 is already applied; to go back use d" in said
        assert "70fa42 is the current revision: nothing to downgrade" in said
        assert "60e91c is already applied" in said
        assert isinstance(app.screen, MainScreen)  # no preview opened


async def test_finished_run_offers_back_not_cancel(demo: Path) -> None:
    app = open_app(demo)
    outcome = run_plan(app.ws, count_orders_plan("shop"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.push_screen(ProgressScreen("shop", operation_id=outcome.operation_id))
        await settle(pilot, lambda: "esc Back" in screen_text(app))
        keys = footer_keys(app)
        assert "c" not in keys
        text = screen_text(app)
        assert "Back" in text and "keeps running" not in text
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_progress_says_it_is_checking_after_the_last_step(demo: Path) -> None:
    app = open_app(demo)
    release = threading.Event()

    def recovered(ctx: Context) -> tuple[bool, str]:
        release.wait(60)  # held until the screen has been read
        return True, "score back to 100%"

    plan = Plan(
        kind="check.orders",
        target="shop",
        title="count and wait",
        steps=[Step("count", "count", lambda ctx: {"n": 1})],
        postconditions=[Postcondition("health recovers", recovered)],
    )
    runner = threading.Thread(target=run_plan, args=(app.ws, plan))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        runner.start()
        try:
            operation = None
            for _ in range(200):
                await pilot.pause(0.05)
                running = app.ws.journal.operations("shop", limit=5)
                operation = next((o for o in running if o["title"] == plan.title), None)
                if operation:
                    break
            assert operation is not None
            app.push_screen(
                ProgressScreen(
                    "shop", operation_id=operation["id"], plan=plan.to_dict()
                )
            )

            def words() -> str:
                return " ".join(screen_text(app).split())

            await settle(pilot, lambda: "measuring recovery" in words(), tries=400)
            text = words()
            assert "all steps done; checking afterwards: health recovers" in text
            assert "100%" not in text and "left" not in text
        finally:
            release.set()
            runner.join()


async def test_backups_footer_and_retention_fit_80_columns(demo: Path) -> None:
    app = open_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        table = await rows_of(pilot, app, "backups-table", 5)
        await settle(pilot, lambda: "retention: keep:" in screen_text(app), tries=400)
        footer = screen_text(app).splitlines()[-1]
        for words in (
            "R Restore",
            "b Backup",
            "v Verify",
            "p Pin",
            "P Prune",
            "/ Filter",
        ):
            assert words in footer
        verdict = app.screen.query_one("#backups").verdicts[table.current.key]
        text = " ".join(screen_text(app).split())
        assert "; ".join(verdict.reasons).split()[-1] in text
        assert "keep_daily: newest of day" in text


def test_demo_is_built_fresh_in_a_new_temporary_folder() -> None:
    first, second = demo_config(), demo_config()
    try:
        assert first != second
        for config in (first, second):
            assert config.parent.name.startswith("dbr-demo-")
            assert (config.parent / "shop.db").stat().st_size > 0
    finally:
        shutil.rmtree(first.parent)
        shutil.rmtree(second.parent)
    assert parse_args(["--demo"]).demo


def test_demo_help_says_where_the_demo_is_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    words = " ".join(capsys.readouterr().out.split())
    assert "built on the spot in a new temporary folder" in words
