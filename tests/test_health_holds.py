"""An automatic rollback never compounds an operator's own work: it is held while
an operation runs on the target, within the trigger's cooldown after one ended,
and (for a downgrade) while the database is already behind the project's heads.
Real runs on the demo workspace: real Alembic downgrades, the real watcher."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from console.cli import main
from core import events as ev
from core.demo import init_demo
from core.state import new_id
from core.targets import make_engine
from core.watch import Watcher
from core.workspace import Workspace


def _demo(tmp_path: Path, *, mode: str = "auto", cooldown: int = 600) -> Path:
    config = init_demo(tmp_path / "demo")
    text = config.read_text()
    for old, new in (
        ("interval = 5 ", "interval = 1 "),
        ("score_below = 60", 'checks_failing = ["alembic heads"]'),
        ("consecutive = 3 ", "consecutive = 1 "),
        ('mode = "suggest"', f'mode = "{mode}"\ncooldown = {cooldown}'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    return config


def _revision(ws: Workspace) -> str:
    engine = make_engine(ws.target("shop").url)
    with engine.connect() as conn:
        rev = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    engine.dispose()
    return str(rev)


def _tables(ws: Workspace) -> set[str]:
    engine = make_engine(ws.target("shop").url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


def _fired(ws: Workspace) -> list[dict]:
    return ws.journal.events("shop", kinds=(ev.TRIGGER_FIRED,))


def _operator_downgrades(config: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        [
            "--config",
            str(config),
            "migrations",
            "downgrade",
            "shop",
            "--to",
            "20c4e7",
            "--yes",
        ]
    )
    assert code == 0, capsys.readouterr()
    capsys.readouterr()


def test_auto_trigger_is_held_after_the_operators_own_downgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = _demo(tmp_path)
    _operator_downgrades(config, capsys)
    ws = Workspace.open(config)
    [downgrade] = ws.journal.operations("shop")
    tables = _tables(ws)
    watcher = Watcher(ws)
    try:
        [sample] = watcher.run_once()
    finally:
        watcher.close()
    assert "alembic heads" in sample.failing
    assert ws.journal.operations("shop", kind="rollback.*") == []
    assert _revision(ws) == "20c4e7" and _tables(ws) == tables  # nothing more lost
    [fired] = _fired(ws)
    held = fired["data"]["held"]
    assert held.startswith(f"held: operation {downgrade['id']} (migration.downgrade)")
    assert "ended" in held and "cooldown of 600 s" in held
    assert "NOT run" in fired["message"]
    ws.close()


def test_downgrade_is_held_when_the_database_is_already_behind_its_heads(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = _demo(tmp_path, cooldown=0)  # no cooldown: only being behind holds it
    _operator_downgrades(config, capsys)
    ws = Workspace.open(config)
    watcher = Watcher(ws)
    try:
        watcher.run_once()
        watcher.run_once()
    finally:
        watcher.close()
    assert ws.journal.operations("shop", kind="rollback.*") == []
    assert _revision(ws) == "20c4e7"
    fired = _fired(ws)
    assert len(fired) == 2
    for event in fired:
        assert (
            "shop is at 20c4e7, behind the project's head 70fa42"
            in event["data"]["held"]
        )
        assert "a further downgrade can only destroy more" in event["message"]
    ws.close()


def test_auto_trigger_is_held_while_an_operation_holds_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = _demo(tmp_path, cooldown=0)
    ws = Workspace.open(config)
    # The database at its head but a check failing would fire it; here it is the
    # lock of an operation running now (this very process) that holds it.
    _operator_downgrades(config, capsys)
    ws.close()
    config.write_text(
        config.read_text().replace(
            'strategy = "downgrade:1"', 'strategy = "restore:latest"'
        )
    )
    ws = Workspace.open(config)
    running = new_id()
    ws.journal.acquire_lock("shop", running, "migration.upgrade")
    try:
        watcher = Watcher(ws)
        try:
            watcher.run_once()
        finally:
            watcher.close()
    finally:
        ws.journal.release_lock("shop", running)
    assert ws.journal.operations("shop", kind="rollback.*") == []
    [fired] = _fired(ws)
    assert fired["data"]["held"].startswith(
        f"held: operation {running} (migration.upgrade) by "
    )
    assert "is running on shop" in fired["data"]["held"]
    ws.close()


def test_suggest_mode_still_alerts_and_says_why_auto_would_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = _demo(tmp_path, mode="suggest")
    _operator_downgrades(config, capsys)
    ws = Workspace.open(config)
    watcher = Watcher(ws)
    try:
        watcher.run_once()
    finally:
        watcher.close()
    [fired] = _fired(ws)
    assert "suggests downgrade:1" in fired["message"]
    assert "an auto trigger would be held: operation" in fired["message"]
    assert fired["data"]["held"].startswith("held: operation")
    assert _revision(ws) == "20c4e7"
    ws.close()
