"""Removing chosen backups: the plan, its safeguards, and `dbr backups remove`.

Real backups of real databases (Chinook in SQLite, a small PostgreSQL database
dumped by pg_dump); afterwards the catalog and the backup folder must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from console.cli import main
from core import backups
from core.backups import REFUSED, Backup
from core.errors import DbrError
from core.workspace import Workspace
from tests.backups_helpers import load_chinook_sqlite, workspace


@pytest.fixture
def shop(tmp_path: Path, sqlite_url: str) -> Path:
    load_chinook_sqlite(sqlite_url)
    workspace(tmp_path, sqlite_url, "shop", retention="keep_last = 2").close()
    return tmp_path / "dbr.toml"


@pytest.fixture
def ws(shop: Path):
    opened = Workspace.open(shop)
    yield opened
    opened.close()


def take(ws: Workspace, count: int, target: str = "shop") -> list[Backup]:
    """count backups, oldest first."""
    return [backups.create_backup(ws, target, label=f"b{n}") for n in range(count)]


def on_disk(backup: Backup) -> bool:
    return backup.path.exists() or backup.manifest_path.exists()


def assert_catalog_and_folder_agree(ws: Workspace, target: str = "shop") -> None:
    listed = backups.list_backups(ws, target)
    folder = Path(ws.settings.target(target).backup_dir)
    files = sorted(p.name for p in folder.glob("*.zst"))
    manifests = sorted(p.name for p in folder.glob("*.manifest.json"))
    assert files == sorted(b.path.name for b in listed)
    assert manifests == sorted(b.manifest_path.name for b in listed)


def by_id(plan) -> dict[str, dict]:
    return {v["id"]: v for v in plan.summary["detail"]["verdicts"]}


def test_chosen_backups_go_and_the_protected_ones_are_refused(ws: Workspace) -> None:
    made = take(ws, 5)
    backups.verify_backup(ws, made[1].id)  # the newest verified one
    backups.pin(ws, made[3].id, "before the March incident")
    chosen = [made[0].id, made[1].id, made[3].id[:8], made[4].id]
    plan = backups.plan_prune(ws, "shop", remove=chosen, policy=False)

    assert plan.kind == "backup.remove" and plan.destructive
    verdicts = by_id(plan)
    assert verdicts[made[0].id]["reasons"] == ["chosen by the operator"]
    assert verdicts[made[4].id]["action"] == "remove"
    assert verdicts[made[1].id]["action"] == REFUSED
    assert "the newest verified backup of shop" in verdicts[made[1].id]["reasons"][0]
    assert verdicts[made[3].id]["action"] == REFUSED
    assert "pinned (before the March incident)" in verdicts[made[3].id]["reasons"][0]
    assert verdicts[made[2].id]["action"] == "keep"  # not chosen, no policy asked
    freed = made[0].size + made[4].size
    assert plan.summary["detail"]["bytes_freed"] == freed
    assert (plan.summary["remove"], plan.summary["refused"]) == (2, 2)
    assert any(r.kind == "refused" and made[3].id in r.message for r in plan.risks)

    outcome = ws.executor.run(plan, ws.target("shop"), confirmed=True)
    assert outcome.ok, outcome.error
    assert outcome.results["removed"] == [made[4].id, made[0].id]
    assert all(check["ok"] for check in outcome.postconditions)
    left = {b.id for b in backups.list_backups(ws, "shop")}
    assert left == {made[1].id, made[2].id, made[3].id}
    assert not on_disk(made[0]) and not on_disk(made[4])
    assert_catalog_and_folder_agree(ws)


def test_judged_again_when_it_runs(ws: Workspace) -> None:
    made = take(ws, 3)
    plan = backups.plan_prune(ws, "shop", remove=[made[0].id, made[1].id], policy=False)
    assert by_id(plan)[made[0].id]["action"] == "remove"
    backups.pin(ws, made[0].id)  # pinned between the preview and the run
    outcome = ws.executor.run(plan, ws.target("shop"), confirmed=True)
    assert outcome.ok, outcome.error
    step = outcome.results["remove backups"]
    assert step["removed"] == [made[1].id]
    assert "pinned" in step["spared"][made[0].id]
    events = ws.journal.operation(outcome.operation_id)["events"]
    assert any(
        e["message"].startswith(f"backup {made[0].id} kept:")
        and e["severity"] == "warning"
        for e in events
    ), events
    assert on_disk(made[0]) and not on_disk(made[1])
    assert_catalog_and_folder_agree(ws)


def test_the_last_complete_backup_is_never_removed(ws: Workspace) -> None:
    made = take(ws, 2)  # neither verified: no "newest verified" guard
    plan = backups.plan_prune(ws, "shop", remove=[b.id for b in made], policy=False)
    verdicts = by_id(plan)
    assert verdicts[made[0].id]["action"] == "remove"
    assert verdicts[made[1].id]["action"] == REFUSED
    assert "the last complete backup of shop" in verdicts[made[1].id]["reasons"][0]
    outcome = ws.executor.run(plan, ws.target("shop"), confirmed=True)
    assert outcome.ok
    assert [b.id for b in backups.list_backups(ws, "shop")] == [made[1].id]
    assert_catalog_and_folder_agree(ws)


def test_a_backup_a_running_operation_uses_is_refused(ws: Workspace) -> None:
    made = take(ws, 3)
    operation = ws.journal.begin(
        "backup.restore", "shop", "restore in progress", plan={"backup_id": made[0].id}
    )
    verdicts = {
        v.id: v
        for v in backups.prune_verdicts(ws, "shop", remove=[made[0].id], policy=False)
    }
    assert verdicts[made[0].id].action == REFUSED
    assert f"used by running operation {operation}" in verdicts[made[0].id].reasons[0]
    ws.journal.finish(operation, "succeeded")
    verdicts = {
        v.id: v
        for v in backups.prune_verdicts(ws, "shop", remove=[made[0].id], policy=False)
    }
    assert verdicts[made[0].id].action == "remove"


def test_chosen_and_the_policy_together(ws: Workspace) -> None:
    made = take(ws, 4)  # keep_last = 2 keeps made[2] and made[3]
    plan = backups.plan_prune(ws, "shop", remove=[made[3].id])
    assert plan.kind == "backup.prune"
    verdicts = by_id(plan)
    assert verdicts[made[3].id]["action"] == "remove"
    assert verdicts[made[3].id]["reasons"][0].startswith(
        "chosen by the operator (the policy would keep it: keep_last"
    )
    assert verdicts[made[0].id]["reasons"] == ["kept by no rule"]
    assert verdicts[made[2].id]["action"] == "keep"
    assert plan.summary["detail"]["bytes_freed"] == sum(
        b.size for b in (made[0], made[1], made[3])
    )
    outcome = ws.executor.run(plan, ws.target("shop"), confirmed=True)
    assert outcome.ok
    assert [b.id for b in backups.list_backups(ws, "shop")] == [made[2].id]
    assert_catalog_and_folder_agree(ws)


def test_unknown_or_foreign_ids_are_named(tmp_path: Path, shop: Path) -> None:
    with shop.open("a") as config:  # a second target, with its own folder
        config.write(
            f'[targets.other]\nurl = "sqlite:///{tmp_path / "other.db"}"\n'
            f'backup_dir = "{tmp_path / "backups" / "other"}"\n'
        )
    ws = Workspace.open(shop)
    try:
        made = take(ws, 2)
        with pytest.raises(DbrError, match="'abcdef' is not in the catalog"):
            backups.plan_remove(ws, ["abcdef"])
        with pytest.raises(
            DbrError, match=f"backup {made[0].id} is a backup of shop, not of other"
        ):
            backups.plan_prune(ws, "other", remove=[made[0].id], policy=False)
        with pytest.raises(DbrError, match="nothing to remove from shop"):
            backups.plan_prune(ws, "shop", policy=False)
        assert len(backups.list_backups(ws, "shop")) == 2
    finally:
        ws.close()


def run(
    capsys: pytest.CaptureFixture, config: Path, *words: str
) -> tuple[int, str, str]:
    code = main(["--config", str(config), "backups", *words])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_preview_then_confirm(shop: Path, capsys: pytest.CaptureFixture) -> None:
    ids = [
        json.loads(run(capsys, shop, "create", "shop", "--json")[1])["id"]
        for _ in range(4)
    ]
    assert run(capsys, shop, "verify", ids[3])[0] == 0

    code, out, _ = run(
        capsys, shop, "remove", ids[0], ids[1][:8], "--dry-run", "--json"
    )
    assert code == 0
    verdicts = {v["id"]: v for v in json.loads(out)}
    assert set(verdicts) == set(ids)
    assert [verdicts[i]["action"] for i in ids] == ["remove", "remove", "keep", "keep"]
    assert verdicts[ids[0]]["reasons"] == ["chosen by the operator"]
    assert verdicts[ids[0]]["frees"] == verdicts[ids[0]]["size"] > 0

    code, out, _ = run(capsys, shop, "remove", ids[0], ids[1], "--dry-run")
    assert code == 0 and "REMOVE" in out and "chosen by the operator" in out
    assert "2 to remove" in out and "dry run: nothing removed" in out

    code, out, err = run(capsys, shop, "remove", ids[0], ids[1])
    assert code == 3 and "not confirmed" in err  # no terminal, no --yes
    assert len(json.loads(run(capsys, shop, "list", "--json")[1])) == 4

    code, out, _ = run(capsys, shop, "remove", ids[0], ids[1], "--yes", "--json")
    assert code == 0
    outcome = json.loads(out)
    assert outcome["status"] == "succeeded"
    assert outcome["results"]["removed"] == [ids[1], ids[0]]
    assert all(check["ok"] for check in outcome["postconditions"])
    left = json.loads(run(capsys, shop, "list", "--json")[1])
    assert sorted(b["id"] for b in left) == sorted(ids[2:])
    folder = Path(left[0]["path"]).parent
    assert (
        len(list(folder.glob("*.zst")))
        == len(list(folder.glob("*.manifest.json")))
        == 2
    )


def test_cli_refuses_a_pinned_or_newest_verified_backup(
    shop: Path, capsys: pytest.CaptureFixture
) -> None:
    ids = [
        json.loads(run(capsys, shop, "create", "shop", "--json")[1])["id"]
        for _ in range(3)
    ]
    assert run(capsys, shop, "verify", ids[2])[0] == 0
    assert run(capsys, shop, "pin", ids[0], "--reason", "audit")[0] == 0
    code, out, err = run(capsys, shop, "remove", ids[0], ids[1], ids[2], "--yes")
    assert code == 3
    assert f"backup {ids[0]}: chosen by the operator, refused: pinned (audit)" in err
    assert (
        f"backup {ids[2]}: chosen by the operator, refused: the newest "
        "verified backup of shop" in err
    )
    assert "nothing was removed" in err
    assert "REFUSED" in out  # the preview still shows every verdict
    assert len(json.loads(run(capsys, shop, "list", "--json")[1])) == 3

    code, out, _ = run(capsys, shop, "remove", ids[0], "--dry-run", "--json")
    assert (
        code == 0 and {v["id"]: v["action"] for v in json.loads(out)}[ids[0]] == REFUSED
    )


def test_cli_help_documents_remove(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["backups", "--help"])
    assert "remove" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["backups", "remove", "--help"])
    text = capsys.readouterr().out
    assert "--dry-run" in text and "--yes" in text and "never a pinned" in text


def test_postgresql_backup_removed_by_the_cli(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("create table orders (id int primary key, total int)")
        conn.exec_driver_sql(
            "insert into orders select g, g * 3 from generate_series(1, 500) g"
        )
    engine.dispose()
    workspace(tmp_path, pg_url, "pg").close()  # no retention policy: not needed
    config = tmp_path / "dbr.toml"
    ids = [
        json.loads(run(capsys, config, "create", "pg", "--json")[1])["id"]
        for _ in range(3)
    ]
    assert run(capsys, config, "verify", ids[1])[0] == 0
    code, out, _ = run(capsys, config, "remove", ids[0], "--yes", "--json")
    assert code == 0 and json.loads(out)["status"] == "succeeded"
    code, out, err = run(capsys, config, "remove", ids[1], "--yes")
    assert code == 3 and "newest verified backup of pg" in err
    ws = Workspace.open(config)
    try:
        assert [b.id for b in backups.list_backups(ws, "pg")] == [ids[2], ids[1]]
        assert_catalog_and_folder_agree(ws, "pg")
    finally:
        ws.close()
