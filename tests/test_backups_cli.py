"""`dbr backups ...` as an operator or a script uses it: output shapes, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from core import backups
from core.workspace import Workspace
from tests.backups_helpers import load_chinook_sqlite, workspace


@pytest.fixture
def shop(tmp_path: Path, sqlite_url: str) -> Path:
    load_chinook_sqlite(sqlite_url)
    workspace(tmp_path, sqlite_url, "shop", retention="keep_last = 2").close()
    return tmp_path / "dbr.toml"


def run(capsys: pytest.CaptureFixture, config: Path, *words: str) -> tuple[int, str]:
    code = main(["--config", str(config), "backups", *words])
    return code, capsys.readouterr().out


def test_create_list_show_pin_in_json_and_on_screen(
    shop: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out = run(capsys, shop, "create", "shop", "--label", "nightly", "--json")
    assert code == 0
    created = json.loads(out)
    code, out = run(capsys, shop, "list", "--json")
    listed = json.loads(out)
    assert [b["id"] for b in listed] == [created["id"]]
    entry = listed[0]
    for key in ("id", "target", "created_at", "size", "sha256", "verified", "pinned"):
        assert key in entry
    assert (
        isinstance(entry["size"], int)
        and entry["size"] == Path(entry["path"]).stat().st_size
    )
    assert entry["created_at"].endswith("+00:00")
    assert entry["verified"] is False and entry["pinned"] is False

    code, out = run(capsys, shop, "list")
    assert "KiB" in out and "nightly" in out and listed[0]["created_at"] not in out

    assert run(capsys, shop, "pin", created["id"][:6])[0] == 0
    code, out = run(capsys, shop, "show", created["id"][:6], "--json")
    assert json.loads(out)["pinned"] is True
    code, out = run(capsys, shop, "show", created["id"])
    assert "pinned: yes" in out and "Track" in out
    assert run(capsys, shop, "unpin", created["id"])[0] == 0
    assert json.loads(run(capsys, shop, "list", "--json")[1])[0]["pinned"] is False

    code, out = run(capsys, shop, "verify", created["id"], "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    assert json.loads(run(capsys, shop, "list", "--json")[1])[0]["verified"] is True


def test_an_unknown_id_fails_with_a_hint(
    shop: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--config", str(shop), "backups", "show", "abc123"]) == 1
    err = capsys.readouterr().err
    assert "not in the catalog" in err and "dbr backups list" in err


def test_restore_needs_confirmation_then_runs(
    shop: Path, capsys: pytest.CaptureFixture
) -> None:
    created = json.loads(run(capsys, shop, "create", "shop", "--json")[1])
    code, out = run(capsys, shop, "restore", created["id"])
    assert code == 3  # not interactive and no --yes: refused, nothing ran
    assert "Tables (rows now -> in the backup)" in out and "safety backup" in out
    assert len(json.loads(run(capsys, shop, "list", "--json")[1])) == 1

    code, out = run(capsys, shop, "restore", created["id"], "--yes", "--json")
    assert code == 0
    outcome = json.loads(out)
    assert outcome["status"] == "succeeded"
    assert outcome["postconditions"][0]["ok"]
    assert len(json.loads(run(capsys, shop, "list", "--json")[1])) == 2


def test_prune_dry_run_then_prune(shop: Path, capsys: pytest.CaptureFixture) -> None:
    ids = [
        json.loads(run(capsys, shop, "create", "shop", "--json")[1])["id"]
        for _ in range(4)
    ]
    assert run(capsys, shop, "verify", ids[0])[0] == 0  # the oldest: newest verified
    code, out = run(capsys, shop, "prune", "--dry-run", "--json")
    assert code == 0
    verdicts = {v["id"]: v for v in json.loads(out)}
    assert set(verdicts) == set(ids)
    assert all(set(v) >= {"id", "action", "reasons"} for v in verdicts.values())
    assert verdicts[ids[0]]["reasons"] == ["newest verified backup"]
    assert verdicts[ids[1]]["action"] == "remove"
    assert verdicts[ids[3]]["reasons"] == ["keep_last: 1 of the 2 newest"]

    code, out = run(capsys, shop, "prune", "--dry-run")
    assert "REMOVE" in out and "freed" in out
    assert run(capsys, shop, "prune")[0] == 3  # not confirmed
    code, out = run(capsys, shop, "prune", "--yes", "--json")
    assert code == 0 and json.loads(out)["status"] == "succeeded"
    left = json.loads(run(capsys, shop, "list", "--json")[1])
    assert sorted(b["id"] for b in left) == sorted([ids[0], ids[2], ids[3]])
    folder = Path(left[0]["path"]).parent
    assert len(list(folder.glob("*.zst"))) == 3


def test_prune_keeps_a_backup_a_running_operation_uses(
    tmp_path: Path, shop: Path, capsys: pytest.CaptureFixture
) -> None:
    ids = [
        json.loads(run(capsys, shop, "create", "shop", "--json")[1])["id"]
        for _ in range(3)
    ]
    ws = Workspace.open(shop)
    operation = ws.journal.begin(
        "backup.restore", "shop", "restore in progress", plan={"backup_id": ids[0]}
    )
    verdicts = {v.id: v for v in backups.retention_verdicts(ws, "shop")}
    assert verdicts[ids[0]].reasons == [f"used by running operation {operation}"]
    ws.journal.finish(operation, "succeeded")
    verdicts = {v.id: v for v in backups.retention_verdicts(ws, "shop")}
    assert verdicts[ids[0]].action == "remove"
    ws.close()


def test_prune_without_a_policy_is_refused(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture
) -> None:
    load_chinook_sqlite(sqlite_url)
    workspace(tmp_path, sqlite_url, "shop").close()
    code = main(
        [
            "--config",
            str(tmp_path / "dbr.toml"),
            "backups",
            "prune",
            "shop",
            "--dry-run",
        ]
    )
    assert code == 2
    assert "no retention policy for shop" in capsys.readouterr().err


def test_the_demo_has_backups_of_different_ages(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from core.demo import init_demo

    config = init_demo(tmp_path / "demo")
    code, out = run(capsys, config, "list", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) == 5
    assert sum(b["pinned"] for b in listed) == 1
    assert sum(b["verified"] for b in listed) == 1
    assert "a month ago" in run(capsys, config, "list")[1]
    # Their manifests agree with the index: a rescan finds the same catalog.
    code, out = run(capsys, config, "rescan", "--json")
    rescanned = json.loads(out)
    assert code == 0 and rescanned["damaged"] == []
    assert [(b["id"], b["created_at"]) for b in rescanned["backups"]] == [
        (b["id"], b["created_at"]) for b in listed
    ]
    code, out = run(capsys, config, "verify", listed[-1]["id"])
    assert code == 0
