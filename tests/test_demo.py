"""The demo workspace: a real SQLite shop, its Alembic history, a loadable dbr.toml."""

from __future__ import annotations

import ast
import io
import shutil
import sqlite3
import time
from contextlib import closing
from importlib.resources import files
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core import config
from core.demo import init_demo
from core.errors import ConfigError

HEAD = "70fa42"
BRANCH_POINT = "30b2d9"
REVIEWS = "41ee5a"
LOYALTY = "42c8b0"
MERGE = "50d3a6"
NO_OP = "60e91c"
SHOP_TABLES = {
    "genres",
    "media_types",
    "artists",
    "albums",
    "tracks",
    "staff",
    "customers",
    "orders",
    "order_lines",
    "reviews",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    init_demo(tmp_path / "demo")
    return tmp_path / "demo"


def alembic_config(workspace: Path) -> Config:
    """What a user gets from `alembic -c alembic.ini`, minus the log handlers."""
    return Config(str(workspace / "alembic.ini"), stdout=io.StringIO())


def current_heads(workspace: Path) -> tuple[str, ...]:
    engine = sa.create_engine(f"sqlite:///{workspace / 'shop.db'}")
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    engine.dispose()
    return tuple(sorted(heads))


def query(workspace: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(workspace / "shop.db")) as db:
        return db.execute(sql).fetchall()


def scalar(workspace: Path, sql: str) -> object:
    return query(workspace, sql)[0][0]


def tables(workspace: Path) -> set[str]:
    rows = query(workspace, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows} - {"alembic_version"}


def columns(workspace: Path, table: str) -> set[str]:
    return {row[1] for row in query(workspace, f"PRAGMA table_info({table})")}


def copy_of(workspace: Path, tmp_path: Path) -> Path:
    """A moved copy of the workspace, so a destructive test leaves no trace."""
    return Path(shutil.copytree(workspace, tmp_path / "copy"))


def test_init_returns_a_dbr_toml_the_loader_accepts(tmp_path: Path) -> None:
    path = init_demo(tmp_path / "demo")

    settings = config.load(path)

    assert path == tmp_path / "demo" / "dbr.toml"
    assert settings.state_url == f"sqlite:///{tmp_path / 'demo' / 'state.db'}"
    shop = settings.target("shop")
    assert shop.url == f"sqlite:///{tmp_path / 'demo' / 'shop.db'}"
    assert shop.alembic == tmp_path / "demo" / "alembic.ini"
    assert shop.alembic.is_file()
    assert shop.backup_dir == tmp_path / "demo" / "backups" / "shop"
    assert set(shop.critical_tables) <= SHOP_TABLES
    assert shop.retention == config.RetentionPolicy(
        keep_last=3, keep_daily=7, keep_weekly=4
    )
    assert (shop.health.threshold, shop.health.interval) == (80, 5)
    assert 2 <= len(shop.health.checks) <= 3
    assert [c.required for c in shop.health.checks].count(True) == 1
    (trigger,) = shop.triggers
    assert (trigger.mode, trigger.score_below, trigger.consecutive) == (
        "suggest",
        60,
        3,
    )
    assert trigger.strategy == "downgrade:1"
    (sink,) = settings.sinks
    assert (sink.type, sink.path) == ("jsonl", tmp_path / "demo" / "alerts.jsonl")


def test_every_health_check_passes_on_a_fresh_demo(workspace: Path) -> None:
    shop = config.load(workspace / "dbr.toml").target("shop")

    for check in shop.health.checks:
        value = scalar(workspace, check.sql)
        assert isinstance(value, (int, float)), check.name
        assert check.min is None or value >= check.min, (check.name, value)
        assert check.max is None or value <= check.max, (check.name, value)


def test_the_shop_holds_a_few_thousand_recent_looking_rows(workspace: Path) -> None:
    assert tables(workspace) == SHOP_TABLES
    total = sum(scalar(workspace, f"SELECT count(*) FROM {t}") for t in SHOP_TABLES)
    assert 3000 <= total <= 20000
    assert scalar(workspace, "SELECT count(*) FROM reviews") >= 200
    newest = "SELECT max(ordered_at) FROM orders"
    assert scalar(workspace, f"SELECT ({newest}) >= datetime('now', '-1 hour')")
    assert scalar(workspace, f"SELECT ({newest}) <= datetime('now')")
    assert scalar(workspace, "SELECT count(*) FROM orders WHERE status = ''") == 0
    orphans = (
        "SELECT count(*) FROM order_lines WHERE track_id NOT IN (SELECT id FROM tracks)"
    )
    assert scalar(workspace, orphans) == 0


def test_the_database_stands_at_the_single_head(workspace: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config(workspace))

    assert script.get_heads() == [HEAD]
    assert current_heads(workspace) == (HEAD,)


def test_the_history_branches_once_and_merges_once(workspace: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config(workspace))
    revisions = list(script.walk_revisions())

    merges = [r.revision for r in revisions if r.is_merge_point]
    branch_points = [r.revision for r in revisions if r.is_branch_point]
    assert 7 <= len(revisions) <= 10
    assert merges == [MERGE]
    assert branch_points == [BRANCH_POINT]
    assert set(script.get_revision(MERGE).down_revision) == {REVIEWS, LOYALTY}
    assert script.get_revision(REVIEWS).branch_labels == {"reviews"}
    assert script.get_revision(LOYALTY).branch_labels == {"loyalty"}
    assert script.get_base() == "10a1f3"


def test_downgrading_reviews_drops_a_table_that_held_rows(
    workspace: Path, tmp_path: Path
) -> None:
    copy = copy_of(workspace, tmp_path)
    reviews = scalar(copy, "SELECT count(*) FROM reviews")

    command.downgrade(alembic_config(copy), f"reviews@{BRANCH_POINT}")

    assert reviews >= 200
    assert "reviews" not in tables(copy)
    assert current_heads(copy) == (LOYALTY,)
    assert "loyalty_points" in columns(copy, "customers")
    assert "reviews" in tables(workspace)


def test_downgrading_loyalty_drops_a_column_that_held_values(
    workspace: Path, tmp_path: Path
) -> None:
    copy = copy_of(workspace, tmp_path)
    held = scalar(copy, "SELECT count(*) FROM customers WHERE loyalty_points > 0")

    command.downgrade(alembic_config(copy), f"loyalty@{BRANCH_POINT}")

    assert held > 0
    assert "loyalty_points" not in columns(copy, "customers")
    assert scalar(copy, "SELECT count(*) FROM customers") == 59
    assert current_heads(copy) == (REVIEWS,)


def test_the_no_op_revision_has_an_empty_downgrade(
    workspace: Path, tmp_path: Path
) -> None:
    script = ScriptDirectory.from_config(alembic_config(workspace))
    source = Path(script.get_revision(NO_OP).path).read_text(encoding="utf-8")
    (downgrade,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade"
    ]
    assert [type(node) for node in downgrade.body] == [ast.Pass]

    copy = copy_of(workspace, tmp_path)
    command.downgrade(alembic_config(copy), NO_OP)
    before = {t: sorted(columns(copy, t)) for t in tables(copy)}
    emails = scalar(copy, "SELECT group_concat(email) FROM customers")
    command.downgrade(alembic_config(copy), MERGE)

    assert current_heads(copy) == (MERGE,)
    assert {t: sorted(columns(copy, t)) for t in tables(copy)} == before
    assert scalar(copy, "SELECT group_concat(email) FROM customers") == emails


def test_full_downgrade_to_base_then_upgrade_to_head(
    workspace: Path, tmp_path: Path
) -> None:
    copy = copy_of(workspace, tmp_path)

    command.downgrade(alembic_config(copy), "base")
    assert tables(copy) == set()
    assert current_heads(copy) == ()

    command.upgrade(alembic_config(copy), "heads")
    assert tables(copy) == SHOP_TABLES
    assert current_heads(copy) == (HEAD,)
    assert "status" in columns(copy, "orders")


def test_offline_mode_writes_the_sql_of_the_whole_history(workspace: Path) -> None:
    upgrade = io.StringIO()
    command.upgrade(
        Config(str(workspace / "alembic.ini"), output_buffer=upgrade), "heads", sql=True
    )
    downgrade = io.StringIO()
    command.downgrade(
        Config(str(workspace / "alembic.ini"), output_buffer=downgrade),
        f"{HEAD}:{BRANCH_POINT}",
        sql=True,
    )

    assert "CREATE TABLE reviews" in upgrade.getvalue()
    assert "ALTER TABLE orders ADD COLUMN status" in upgrade.getvalue()
    assert "DROP TABLE reviews" in downgrade.getvalue()
    assert "ALTER TABLE customers DROP COLUMN loyalty_points" in downgrade.getvalue()
    assert current_heads(workspace) == (HEAD,)


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        init_demo(tmp_path)

    assert "not empty" in caught.value.title
    assert "notes.txt" in caught.value.cause
    assert "--force" in caught.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_init_refuses_a_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "demo").write_text("", encoding="utf-8")

    with pytest.raises(ConfigError, match="not a folder"):
        init_demo(tmp_path / "demo")


def test_force_writes_a_fresh_demo_over_an_old_one(workspace: Path) -> None:
    (workspace / "notes.txt").write_text("mine", encoding="utf-8")
    with closing(sqlite3.connect(workspace / "shop.db")) as db, db:
        db.execute("DELETE FROM order_lines")

    init_demo(workspace, force=True)

    assert scalar(workspace, "SELECT count(*) FROM order_lines") > 2000
    assert current_heads(workspace) == (HEAD,)
    assert (workspace / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert not list(workspace.glob(".shop.db*"))


def test_force_refuses_a_folder_with_other_revisions(workspace: Path) -> None:
    stranger = workspace / "migrations" / "versions" / "9999_theirs.py"
    stranger.write_text('revision = "9999"\ndown_revision = None\n', encoding="utf-8")

    with pytest.raises(ConfigError, match="other Alembic revisions"):
        init_demo(workspace, force=True)


def test_init_is_quick_and_ships_its_data_and_licence(tmp_path: Path) -> None:
    started = time.perf_counter()
    init_demo(tmp_path / "demo")
    elapsed = time.perf_counter() - started

    assert elapsed < 3.0
    data = files("core.demo_data") / "shop.json.gz"
    assert len(data.read_bytes()) < 400_000
    licence = (tmp_path / "demo" / "CHINOOK-LICENSE.txt").read_text(encoding="utf-8")
    assert "Luis Rocha" in licence
    assert "Chinook" in (tmp_path / "demo" / "dbr.toml").read_text(encoding="utf-8")
