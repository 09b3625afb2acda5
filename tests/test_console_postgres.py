"""The console on a real PostgreSQL target: Pagila with a small Alembic project."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from console.screens.confirm import ConfirmScreen
from console.screens.plan import PlanScreen
from console.screens.progress import ProgressScreen
from console.widgets.table import VirtualTable
from core import migrations
from core.workspace import Workspace
from tests.backups_helpers import load_pagila
from tests.console_helpers import open_app, screen_text, settle
from tests.migrations_helpers import Rev, alembic_upgrade, write_project

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

PAGILA_REVISIONS = [
    Rev(
        "a1staff",
        None,
        message="mark staff picks",
        upgrade="""
        op.add_column("film", sa.Column("staff_pick", sa.Boolean, nullable=True))
        op.execute("UPDATE film SET staff_pick = (film_id % 7 = 0)")
    """,
        downgrade='op.drop_column("film", "staff_pick")',
    ),
    Rev(
        "b2index",
        "a1staff",
        message="index staff picks",
        upgrade='op.create_index("film_staff_pick", "film", ["staff_pick"])',
        downgrade='op.drop_index("film_staff_pick", table_name="film")',
    ),
    Rev(
        "c3review",
        "b2index",
        message="film reviews",
        upgrade="""
        op.create_table(
            "film_review",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("film_id", sa.Integer, nullable=False),
            sa.Column("stars", sa.Integer, nullable=False),
        )
        op.execute("INSERT INTO film_review (film_id, stars) "
                   "SELECT film_id, 1 + film_id % 5 FROM film")
    """,
        downgrade='op.drop_table("film_review")',
    ),
]

# Slow enough downgrades to cancel between their steps.
SLOW_REVISIONS = [
    Rev(
        f"s{n}",
        None if n == 1 else f"s{n - 1}",
        message=f"step {n}",
        upgrade=f'op.add_column("ledger", sa.Column("c{n}", sa.Integer))',
        downgrade=f'op.execute("SELECT pg_sleep(3)")\nop.drop_column("ledger", "c{n}")',
    )
    for n in (1, 2, 3, 4)
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pagila(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    load_pagila(pg_url)
    project = tmp_path / "project"
    alembic_upgrade(pg_url, write_project(project, PAGILA_REVISIONS, url=pg_url))
    config = project / "dbr.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state.db"\n\n[targets.pagila]\n'
        f'url = "{pg_url}"\nalembic = "alembic.ini"\nbackup_dir = "backups"\n'
        'critical_tables = ["film", "rental"]\n'
    )
    return config


async def test_downgrade_on_postgresql_from_the_console(pagila: Path) -> None:
    app = open_app(pagila)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one("#revisions-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == 3, tries=600)
        text = screen_text(app)
        assert "pagila" in text and "postgresql" in text
        assert "◀ current" in text and "DROPS table film_review" in text
        health = app.screen.query_one("#checks-table", VirtualTable)
        await settle(pilot, lambda: len(health.rows) > 0, tries=600)
        assert "✓ ok" in screen_text(app)
        assert table.move_to("b2index")
        await pilot.press("d")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=600,
        )
        text = screen_text(app)
        assert "DROP TABLE film_review" in text
        assert "1,000" in text  # the rows the dropped table holds, counted live
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press(*"pagila", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        await settle(pilot, lambda: app.screen.finished, tries=2400)
        assert app.screen.operation["status"] == "succeeded", [
            s.get("error") for s in app.screen.operation["steps"]
        ]
    ws = Workspace.open(pagila)
    try:
        assert migrations.current(ws.target("pagila")).heads == ["b2index"]
    finally:
        ws.close()


@pytest.fixture
def slow_project(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table ledger (id serial primary key)"))
    engine.dispose()
    project = tmp_path / "slow"
    alembic_upgrade(pg_url, write_project(project, SLOW_REVISIONS, url=pg_url))
    config = project / "dbr.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state.db"\n\n[targets.ledger]\n'
        f'url = "{pg_url}"\nalembic = "alembic.ini"\nbackup_dir = "backups"\n'
    )
    return config


async def test_cancel_stops_the_run_between_steps(slow_project: Path) -> None:
    app = open_app(slow_project)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#revisions-table", VirtualTable)
        await settle(pilot, lambda: len(table.rows) == 4, tries=600)
        assert table.move_to("s1")
        await pilot.press("d")
        await settle(
            pilot,
            lambda: isinstance(app.screen, PlanScreen) and app.screen.plan is not None,
            tries=600,
        )
        await pilot.press("s", "c", *"ledger", "enter")  # no safety backup: faster
        await settle(pilot, lambda: isinstance(app.screen, ProgressScreen))
        progress = app.screen

        def first_step_done() -> bool:
            steps = (progress.operation or {}).get("steps") or []
            return any(s["status"] == "succeeded" for s in steps)

        await settle(pilot, first_step_done, tries=2400)
        await pilot.press("c")
        await settle(pilot, lambda: progress.finished, tries=2400)
        assert progress.operation["status"] == "cancelled"
        statuses = [s["status"] for s in progress.operation["steps"]]
        assert "skipped" in statuses and statuses[0] == "succeeded"
        assert "CANCELLED" in screen_text(app).upper()
    ws = Workspace.open(slow_project)
    try:
        heads = migrations.current(ws.target("ledger")).heads
        # Stopped at a step boundary: one or two of the three steps ran, not all.
        assert heads in (["s3"], ["s2"])
    finally:
        ws.close()
