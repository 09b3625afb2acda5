"""`dbr migrations ...` as an operator runs it: output, JSON shapes, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from core.journal import Journal
from core.state import Store
from tests.migrations_helpers import alembic_upgrade, heads, table_revs, write_project


@pytest.fixture
def workspace(tmp_path: Path, sqlite_url: str) -> Path:
    ini = write_project(tmp_path / "project", table_revs("r1", "r2", "r3"))
    alembic_upgrade(sqlite_url, ini)
    config = tmp_path / "dbr.toml"
    config.write_text(
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n\n'
        f'[targets.shop]\nurl = "{sqlite_url}"\nalembic = "{ini}"\n'
        f'backup_dir = "{tmp_path / "backups"}"\n'
    )
    return config


def run(config: Path, *words: str) -> int:
    return main(["--config", str(config), *words])


def test_history_json_lists_revisions(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workspace, "migrations", "history", "shop", "--json") == 0
    revisions = json.loads(capsys.readouterr().out)
    assert [r["revision"] for r in revisions] == ["r3", "r2", "r1"]
    assert revisions[0]["downgrade"]["operations"][0]["kind"] == "drop_table"
    assert all(r["applied"] for r in revisions)

    assert run(workspace, "migrations", "history", "shop") == 0
    text = capsys.readouterr().out
    assert "shop: database at r3 (at head)" in text
    assert "DESTROYS: drop table t_r3" in text


def test_downgrade_without_yes_shows_the_plan_and_exits_3(
    workspace: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workspace, "migrations", "downgrade", "shop", "--to", "-1") == 3
    captured = capsys.readouterr()
    assert "Step 1. downgrade r3  [DESTRUCTIVE]" in captured.out
    assert "drops table t_r3: 3 rows" in captured.out
    assert "not confirmed" in captured.err
    assert heads(sqlite_url) == ["r3"]


def test_downgrade_declining_the_safety_backup_is_journaled(
    workspace: Path, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        workspace,
        "migrations",
        "downgrade",
        "shop",
        "--to",
        "r1",
        "--yes",
        "--no-safety-backup",
        "--json",
    )
    outcome = json.loads(capsys.readouterr().out)
    assert code == 0 and outcome["status"] == "succeeded"
    assert heads(sqlite_url) == ["r1"]
    journal = Journal(Store(f"sqlite:///{tmp_path / 'state.db'}"))
    entry = journal.operation(outcome["operation_id"])
    assert entry["options"]["safety_backup_declined"] is True
    assert entry["options"]["spec"] == "r1"

    assert run(workspace, "migrations", "diff", "shop", "--json") == 0
    change = json.loads(capsys.readouterr().out)
    assert change["from"].startswith("snapshot") and change["to"] == "live"
    assert change["schema_changed"] is False  # the after snapshot is the live one
    assert run(workspace, "migrations", "diff", "shop", "1", "2", "--json") == 0
    assert json.loads(capsys.readouterr().out)["tables_removed"] == ["t_r2", "t_r3"]

    assert run(workspace, "migrations", "upgrade", "shop", "--yes") == 0
    assert heads(sqlite_url) == ["r3"]


def test_plan_json_shape_and_ambiguity_exit_code(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workspace, "migrations", "plan", "shop", "--to", "-2", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["target"] == "shop" and plan["from"] == ["r3"] and plan["to"] == ["r1"]
    assert [s["revision"] for s in plan["steps"]] == ["r3", "r2"]
    assert plan["risks"][0] | {"message": None} == {
        "kind": "drop_table",
        "table": "t_r3",
        "column": None,
        "rows": 3,
        "severity": "critical",
        "message": None,
        "bytes": plan["risks"][0]["bytes"],
        "step": "downgrade r3",
    }
    assert plan["transactional"] is True

    assert run(workspace, "migrations", "plan", "shop", "--to", "zzz") == 2
    assert "cannot downgrade 'shop' to 'zzz'" in capsys.readouterr().err


def test_roundtrip_from_the_command_line(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = tmp_path / "scratch.db"
    code = run(
        workspace,
        "migrations",
        "test",
        "shop",
        "--scratch",
        f"sqlite:///{scratch}",
        "--json",
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["ok"] and result["counts"] == {"ok": 3}
    assert result["scratch_dropped"] and not scratch.exists()
    journal = Journal(Store(f"sqlite:///{tmp_path / 'state.db'}"))
    [entry] = journal.operations("shop", kind="migration.roundtrip")
    assert entry["status"] == "succeeded" and entry["result"]["counts"] == {"ok": 3}


def test_the_demo_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.demo import init_demo

    config = init_demo(tmp_path / "demo")
    assert run(config, "migrations", "history") == 0  # its one target, shop
    assert "shop: database at 70fa42 (at head)" in capsys.readouterr().out

    assert run(config, "migrations", "plan", "--to", "30b2d9", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    dropped = {(r["kind"], r["table"], r["column"]): r["rows"] for r in plan["risks"]}
    assert dropped[("drop_table", "reviews", None)] > 0
    assert dropped[("drop_column", "customers", "loyalty_points")] > 0
    assert plan["safety_backup"] is not None

    assert run(config, "migrations", "downgrade", "--to", "30b2d9", "--yes") == 0
    capsys.readouterr()
    assert run(config, "migrations", "current", "--json") == 0
    assert json.loads(capsys.readouterr().out)["heads"] == ["30b2d9"]
    assert run(config, "migrations", "upgrade", "--yes") == 0
    capsys.readouterr()

    scratch = tmp_path / "scratch.db"
    assert (
        run(config, "migrations", "test", "--scratch", f"sqlite:///{scratch}", "--json")
        == 1
    )  # 60e91c's downgrade is empty on purpose
    result = json.loads(capsys.readouterr().out)
    assert result["counts"] == {"ok": 7, "noop": 1}
    assert not scratch.exists()
