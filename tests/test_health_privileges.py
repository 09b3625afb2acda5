"""A check the user has no privilege to run is not measured, not failed: an
ordinary MariaDB application user cannot read replica status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from console.cli import main
from core.health import Monitor
from core.health.checks import SKIPPED, CheckResult
from core.health.score import compute
from core.targets import make_engine
from tests.conftest import make_target, unique_name


@pytest.fixture
def app_user_url(mysql_url: str) -> Iterator[str]:
    """A user with every right on its own database and no server-wide privilege."""
    admin = make_engine(mysql_url)
    url = sa.engine.make_url(mysql_url)
    user = unique_name()[:32]
    with admin.begin() as conn:
        conn.execute(sa.text(f"create user '{user}'@'%' identified by 'app-pw'"))
        conn.execute(
            sa.text(f"create user '{user}'@'localhost' identified by 'app-pw'")
        )
        for host in ("%", "localhost"):
            conn.execute(
                sa.text(f"grant all on `{url.database}`.* to '{user}'@'{host}'")
            )
    try:
        yield url.set(username=user, password="app-pw").render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop user if exists '{user}'@'%'"))
            conn.execute(sa.text(f"drop user if exists '{user}'@'localhost'"))
        admin.dispose()


def test_replication_lag_without_the_privilege_is_left_out_of_the_score(
    app_user_url: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monitor = Monitor(None)
    try:
        sample = monitor.sample(make_target(app_user_url), keep=False)
    finally:
        monitor.close()
    lag = sample.check("replication lag")
    assert lag is not None and lag.status == SKIPPED and lag.skipped
    assert "needs REPLICATION CLIENT/SLAVE MONITOR" in (lag.error or "")
    assert lag.to_dict()["ok"] is None
    # Every other check passes, so the score is whole and the target healthy.
    assert sample.score == 100 and sample.healthy, sample.explanation
    assert "replication lag" not in sample.failing
    assert "replication lag" not in {item["check"] for item in sample.lowered_by}

    config = tmp_path / "dbr.toml"
    config.write_text(
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
        f'[targets.shop]\nurl = "{app_user_url}"\n'
    )
    assert main(["--config", str(config), "health", "shop", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    shown = next(c for c in out["checks"] if c["name"] == "replication lag")
    assert shown["ok"] is None and shown["status"] == "skipped"
    assert "REPLICATION CLIENT" in shown["error"]
    assert out["score"] == 100 and out["healthy"] is True

    assert main(["--config", str(config), "health", "shop"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("replication lag"))
    assert "SKIPPED" in row and "not measured" in row
    assert "app-pw" not in text


def test_a_skipped_check_neither_passes_nor_fails_in_the_score() -> None:
    results = [
        CheckResult("round trip", "ok", weight=3.0),
        CheckResult("orders", "failing", weight=1.0, detail="0 rows"),
        CheckResult(
            "replication lag",
            SKIPPED,
            weight=4.0,
            error="not measured: needs a privilege",
        ),
    ]
    score = compute(results, threshold=80)
    assert score.score == 75.0  # 3 of 4, the skipped weight counted nowhere
    assert [item["check"] for item in score.lowered_by] == ["orders"]
    assert any(
        "replication lag" in line and "left out" in line for line in score.explanation
    )
