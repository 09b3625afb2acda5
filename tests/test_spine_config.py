"""dbr.toml: where it is found, what a bad one says, `dbr config check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def dbr(
    *args: str,
    cwd: Path = ROOT,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_relative_paths_resolve_against_the_files_folder(
    tmp_path: Path, monkeypatch
) -> None:
    config = write(
        tmp_path / "dbr.toml",
        """
        [state]
        url = "sqlite:///state/dbr.db"
        [targets.shop]
        url = "sqlite:///shop.db"
        alembic = "migrations/alembic.ini"
        backup_dir = "backups/shop"
        critical_tables = ["orders", "customers"]
    """.replace("\n        ", "\n"),
    )
    monkeypatch.chdir("/")
    settings = load(config)
    shop = settings.target("shop")
    assert shop.url == f"sqlite:///{tmp_path}/shop.db"
    assert shop.alembic == tmp_path / "migrations" / "alembic.ini"
    assert shop.backup_dir == tmp_path / "backups" / "shop"
    assert shop.critical_tables == ("orders", "customers")
    assert settings.state_url == f"sqlite:///{tmp_path}/state/dbr.db"


def test_config_is_found_by_flag_then_env_then_working_folder(
    tmp_path: Path, monkeypatch
) -> None:
    here = write(tmp_path / "dbr.toml", '[targets.here]\nurl = "sqlite:///a.db"\n')
    other = write(tmp_path / "other.toml", '[targets.env]\nurl = "sqlite:///b.db"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DBR_CONFIG", raising=False)
    assert list(load().targets) == ["here"]
    monkeypatch.setenv("DBR_CONFIG", str(other))
    assert list(load().targets) == ["env"]
    assert list(load(here).targets) == ["here"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            '[targets.shop]\nurl = "sqlite:///a.db"\nbackup_dri = "x"\n',
            ["targets.shop.backup_dri", "not a known setting"],
        ),
        ('[targets.shop]\nurl = "oracle://x/y"\n', ["targets.shop.url", "oracle"]),
        (
            '[targets.shop]\nurl = "postgresql://app@db:/shop"\n',
            ["targets.shop.url", "not a database URL"],
        ),
        ('[targets.shop]\nalembic = "a.ini"\n', ["targets.shop.url", "required"]),
        (
            '[targets.shop]\nurl = "sqlite:///a.db"\ncritical_tables = "orders"\n',
            ["targets.shop.critical_tables", "list"],
        ),
        (
            '[targets.shop]\nurl = "sqlite:///a.db"\n[targets.shop.health]\n'
            'threshold = "high"\n',
            ["targets.shop.health.threshold", "number"],
        ),
        ("[targets.shop\nurl = 1\n", ["not valid TOML"]),
    ],
)
def test_a_bad_file_names_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    config = write(tmp_path / "dbr.toml", text)
    with pytest.raises(ConfigError) as error:
        load(config)
    message = str(error.value)
    assert str(config) in message
    for name in names:
        assert name in message

    result = dbr("--config", str(config), "config", "check")
    assert result.returncode == 2
    assert str(config) in result.stderr and names[0] in result.stderr
    assert result.stdout == ""


def test_config_check_validates_without_touching_any_database(tmp_path: Path) -> None:
    config = write(
        tmp_path / "dbr.toml",
        """
        [targets.far]
        url = "postgresql+psycopg://app@127.0.0.1:1/nothing_listens_here"
        [targets.gone]
        url = "sqlite:///does/not/exist.db"
    """.replace("\n        ", "\n"),
    )
    result = dbr("--config", str(config), "config", "check", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["targets"] == ["far", "gone"]
    assert not (tmp_path / "does").exists()


def test_an_unknown_target_lists_the_known_ones(tmp_path: Path) -> None:
    config = write(tmp_path / "dbr.toml", '[targets.shop]\nurl = "sqlite:///a.db"\n')
    with pytest.raises(ConfigError) as error:
        load(config).target("shpo")
    assert "shpo" in str(error.value) and "shop" in str(error.value)


def test_a_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = dbr("--config", str(tmp_path / "nope.toml"), "targets")
    assert result.returncode == 2 and "nope.toml" in result.stderr


def test_demo_init_then_targets_lists_the_demo_target(tmp_path: Path) -> None:
    made = dbr("demo", "init", str(tmp_path / "demo"))
    assert made.returncode == 0, made.stderr
    listed = dbr("--config", str(tmp_path / "demo" / "dbr.toml"), "targets", "--json")
    assert listed.returncode == 0, listed.stderr
    [shop] = json.loads(listed.stdout)
    assert shop["name"] == "shop" and shop["dialect"] == "sqlite"


def test_a_typo_in_the_state_url_does_not_start_an_empty_journal(
    tmp_path: Path,
) -> None:
    config = write(
        tmp_path / "dbr.toml",
        f'[state]\nurl = "sqlite:///{tmp_path}/no-such-folder/state.db"\n',
    )
    result = dbr("--config", str(config), "log")
    assert result.returncode == 2
    assert "no-such-folder" in result.stderr and "[state] url" in result.stderr
    assert not (tmp_path / "no-such-folder").exists()


def test_a_file_that_is_not_utf8_or_a_state_store_that_is_not_sqlite_is_named(
    tmp_path: Path,
) -> None:
    config = tmp_path / "dbr.toml"
    config.write_bytes(b'[targets.shop]\nurl = "sqlite:///caf\xe9.db"\n')
    result = dbr("--config", str(config), "targets")
    assert result.returncode == 2 and "not UTF-8" in result.stderr

    (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
    config.write_text('[state]\nurl = "sqlite:///state.db"\n')
    result = dbr("--config", str(config), "log")
    assert result.returncode == 1
    assert "cannot open the state store" in result.stderr
    assert "internal error" not in result.stderr


def test_config_check_names_missing_files_and_unknown_check_names(
    tmp_path: Path,
) -> None:
    config = write(
        tmp_path / "dbr.toml",
        """
        [targets.shop]
        url = "sqlite:///shop.db"
        alembic = "missing/alembic.ini"
        [targets.shop.health]
        disable = ["quick_check", "replication lagg"]
        [[targets.shop.triggers]]
        name = "orders stop"
        checks_failing = ["orders per hour"]
        strategy = "notify"
    """.replace("\n        ", "\n"),
    )
    result = dbr("--config", str(config), "config", "check", "--json")
    assert result.returncode == 2
    problems = json.loads(result.stdout)["problems"]
    assert any("targets.shop.alembic" in p and "does not exist" in p for p in problems)
    assert any("'replication lagg'" in p for p in problems)
    assert not any("'quick_check'" in p for p in problems)
    assert any("checks_failing" in p and "'orders per hour'" in p for p in problems)
