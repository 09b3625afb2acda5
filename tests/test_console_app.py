"""The console's skeleton driven by its pilot: layout, header, journal, alerts, keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.app import main as console_main
from console.screens.main import MainScreen
from console.widgets.table import VirtualTable
from core.demo import init_demo
from core.events import Severity
from core.workspace import Workspace
from tests.console_helpers import (
    count_orders_plan,
    open_app,
    run_plan,
    screen_text,
    settle,
    warn,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = init_demo(tmp_path_factory.mktemp("demo") / "ws")
    ws = Workspace.open(config)
    try:
        run_plan(ws, count_orders_plan("shop"))
        run_plan(ws, count_orders_plan("shop", fail=True))
    finally:
        ws.close()
    return config


async def test_small_terminal_shows_tabs_and_switches_panes(demo_config: Path) -> None:
    app = open_app(demo_config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await settle(
            pilot,
            lambda: len(screen.query_one("#journal-table", VirtualTable).rows) == 2,
        )
        assert not screen.has_class("-wide")
        text = screen_text(app)
        assert "1 Migrations" in text and "4 Rollback log" in text
        assert "shop" in text and "sqlite" in text
        await pilot.press("4")
        text = screen_text(app)
        assert "count the orders" in text
        assert "✗ FAILED" in text and "✓ succeeded" in text
        visible = [p.id for p in screen.query(".pane") if p.display]
        assert visible == ["journal"]


async def test_large_terminal_shows_all_four_panes(demo_config: Path) -> None:
    app = open_app(demo_config)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await pilot.pause()
        assert screen.has_class("-wide")
        assert [p.id for p in screen.query(".pane") if p.display] == [
            "migrations",
            "backups",
            "health",
            "journal",
        ]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not screen.has_class("-wide")
        assert len([p for p in screen.query(".pane") if p.display]) == 1


async def test_journal_detail_names_steps_and_error(demo_config: Path) -> None:
    app = open_app(demo_config)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#journal-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == 2)
        failed = next(i for i, r in enumerate(table.rows) if r.text(2) == "✗ FAILED")
        table.cursor = failed
        await settle(pilot, lambda: "does not add up" in screen_text(app))
        text = screen_text(app)
        assert "count orders" in text
        assert "RuntimeError" in text


async def test_alerts_stream_and_toasts_follow_the_journal(demo_config: Path) -> None:
    app = open_app(demo_config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await settle(pilot, lambda: screen.last_event_id > 0)
        warn(
            app.ws,
            "shop",
            "health degraded: orders in the last day failing",
            Severity.CRITICAL,
        )
        await settle(pilot, lambda: "health degraded" in screen_text(app), tries=200)
        text = screen_text(app)
        assert "CRIT" in text  # the severity in words, not only in red
        assert any("health degraded" in str(n.message) for n in app._notifications)


async def test_read_only_greys_out_every_changing_action(demo_config: Path) -> None:
    app = open_app(demo_config, read_only=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        assert "[READ-ONLY]" in screen_text(app)
        bindings = app.screen.active_bindings
        assert bindings["d"].enabled is True  # downgrade: its preview only
        assert bindings["t"].enabled is True  # looking around stays possible
        await pilot.press("2")
        await pilot.pause()
        assert app.screen.active_bindings["b"].enabled is False  # new backup
        assert app.screen.active_bindings["P"].enabled is False  # prune


async def test_command_palette_lists_actions_with_their_keys(demo_config: Path) -> None:
    app = open_app(demo_config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"downgrade")
        await settle(pilot, lambda: "key d" in screen_text(app))
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"roll back or")
        await settle(pilot, lambda: "key o" in screen_text(app))


async def test_unknown_target_is_refused_with_the_choices(demo_config: Path) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="no target named 'nope'") as caught:
        open_app(demo_config, target="nope")
    assert "shop" in str(caught.value.hint)


def test_demo_and_config_together_are_refused(capsys: pytest.CaptureFixture) -> None:
    from console.app import main

    with pytest.raises(SystemExit) as stopped:
        main(["--demo", "--config", "x.toml"])
    assert stopped.value.code == 2
    assert "--demo and --config cannot be used together" in capsys.readouterr().err


async def test_a_silent_database_never_freezes_the_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes connections and never answers: keys still work."""
    import socket

    from console.screens.targets import TargetsScreen
    from console.widgets.header import TargetHeader

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    config = init_demo(tmp_path / "ws")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes handshakes; nobody ever answers
    port = silent.getsockname()[1]
    config.write_text(
        config.read_text()
        + (
            f'\n[targets.stuck]\nurl = "postgresql+psycopg://dbr@127.0.0.1:{port}/app"\n'
            'alembic = "alembic.ini"\n'
        )
    )
    try:
        app = open_app(config, target="stuck")
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            text = screen_text(app)
            assert "stuck" in text and "postgresql" in text
            assert "loading…" in text  # says it is waiting, does not hang
            await pilot.press("4")
            assert [p.id for p in app.screen.query(".pane") if p.display] == ["journal"]
            await pilot.press("t")
            await settle(pilot, lambda: isinstance(app.screen, TargetsScreen))
            assert "stuck  score unknown" in screen_text(app)
            await pilot.press("up", "enter")
            await settle(pilot, lambda: app.target_name == "shop")
            header = app.screen.query_one(TargetHeader)
            await settle(
                pilot,
                lambda: (
                    header.current is not None
                    and header.current.name == "shop"
                    and header.current.score is not None
                ),
                tries=400,
            )
            assert "stuck ?" in screen_text(app)  # its score: unknown, in words
    finally:
        silent.close()


async def test_command_palette_on_a_flow_screen_lists_its_keys(
    demo_config: Path,
) -> None:
    app = open_app(demo_config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("e")  # the timeline export screen
        await pilot.pause()
        await pilot.press("ctrl+p", *"write")
        await settle(pilot, lambda: "Write file · key ctrl+s" in screen_text(app))


def test_a_malformed_target_url_stops_the_console_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = init_demo(tmp_path / "ws")
    config.write_text(
        config.read_text()
        + ('\n[targets.broken]\nurl = "postgresql+psycopg://dbr@127.0.0.1:/app"\n')
    )
    with pytest.raises(SystemExit) as stopped:
        console_main(["--config", str(config), "broken"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert str(config) in error and "targets.broken.url" in error
