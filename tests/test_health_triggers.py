"""Triggers: consecutive samples, cooldown, modes; strategies run end to end."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from console.cli import main
from core import events as ev
from core import health, metrics
from core.errors import ConfigError
from core.rollback import TRIGGER_SHADOW
from core.targets import make_engine
from core.watch import Watcher
from core.workspace import Workspace


def _workspace(
    tmp_path: Path, trigger: str, *, url: str | None = None, health_extra: str = ""
) -> Workspace:
    db = tmp_path / "app.db"
    if url is None:
        engine = make_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.execute(sa.text("create table switch (flag integer)"))
            conn.execute(sa.text("insert into switch values (1)"))
        engine.dispose()
        url = f"sqlite:///{db}"
    config = tmp_path / "dbr.toml"
    config.write_text(f"""
[state]
url = "sqlite:///{tmp_path / "state.db"}"
[targets.app]
url = "{url}"
[targets.app.health]
threshold = 80
{health_extra}
[[targets.app.health.checks]]
name = "switch on"
sql = "select flag from switch"
min = 1
weight = 20
[[targets.app.triggers]]
{trigger}
[alerts]
quiet_period = 300
[[alerts.sinks]]
type = "jsonl"
path = "{tmp_path / "alerts.jsonl"}"
""")
    return Workspace.open(config)


def _switch(tmp_path: Path, on: bool) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("update switch set flag = :f"), {"f": int(on)})
    engine.dispose()


def _fired(ws: Workspace, kind: str = ev.TRIGGER_FIRED) -> list[dict]:
    return ws.journal.events("app", kinds=(kind,))


def _alerts(tmp_path: Path) -> list[dict]:
    path = tmp_path / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


SUGGEST = """name = "collapse"
score_below = 60
consecutive = 3
strategy = "notify"
mode = "suggest"
cooldown = 3600"""


def test_a_trigger_fires_only_after_its_consecutive_samples(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, SUGGEST)
    watcher = Watcher(ws)
    _switch(tmp_path, False)
    watcher.run_once()
    watcher.run_once()
    assert _fired(ws) == []
    [state] = health.trigger_states(ws, "app")
    assert state.description.startswith("2 of 3 samples below 60")
    _switch(tmp_path, True)
    watcher.run_once()  # one good sample breaks the streak
    _switch(tmp_path, False)
    watcher.run_once()
    watcher.run_once()
    assert _fired(ws) == []
    watcher.run_once()
    [fired] = _fired(ws)
    assert fired["severity"] == "warning"
    assert fired["data"]["trigger"] == "collapse"
    assert "3 of 3 samples below 60" in fired["message"]
    assert "dbr rollback plan app --strategy notify" in fired["message"]
    assert ws.journal.operations("app") == []  # suggest proposes, never acts
    assert any(a["kind"] == ev.TRIGGER_FIRED for a in _alerts(tmp_path))
    watcher.close()
    ws.close()


def test_cooldown_holds_across_samples_and_watcher_restarts(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, SUGGEST.replace("consecutive = 3", "consecutive = 1"))
    _switch(tmp_path, False)
    watcher = Watcher(ws)
    for _ in range(4):
        watcher.run_once()
    watcher.close()
    assert len(_fired(ws)) == 1
    [state] = health.trigger_states(ws, "app")
    assert state.cooling_until is not None and "in cooldown" in state.description
    restarted = Watcher(ws)  # the cooldown is read back from the journal
    restarted.run_once()
    restarted.close()
    assert len(_fired(ws)) == 1
    ws.close()


def test_without_cooldown_a_new_streak_is_needed_to_fire_again(tmp_path: Path) -> None:
    trigger = SUGGEST.replace("consecutive = 3", "consecutive = 2").replace(
        "cooldown = 3600", "cooldown = 0"
    )
    ws = _workspace(tmp_path, trigger)
    _switch(tmp_path, False)
    watcher = Watcher(ws)
    for expected in (0, 1, 1, 2):
        watcher.run_once()
        assert len(_fired(ws)) == expected
    watcher.close()
    ws.close()


def test_shadow_mode_only_records_what_it_would_have_done(tmp_path: Path) -> None:
    trigger = SUGGEST.replace('mode = "suggest"', 'mode = "shadow"').replace(
        "consecutive = 3", "consecutive = 1"
    )
    ws = _workspace(tmp_path, trigger)
    _switch(tmp_path, False)
    watcher = Watcher(ws)
    watcher.run_once()
    watcher.run_once()
    watcher.close()
    [shadow] = _fired(ws, TRIGGER_SHADOW)
    assert "would have run notify" in shadow["message"]
    assert _fired(ws) == []
    assert ws.journal.operations("app") == []
    kinds = {a["kind"] for a in _alerts(tmp_path)}
    assert TRIGGER_SHADOW not in kinds and ev.TRIGGER_FIRED not in kinds
    assert ev.HEALTH_DEGRADED in kinds  # the health alert itself still goes out
    ws.close()


def test_checks_failing_trigger_and_unknown_check_names(tmp_path: Path) -> None:
    trigger = """name = "switch"
checks_failing = ["switch on"]
consecutive = 2
strategy = "notify"
mode = "auto"
cooldown = 600"""
    ws = _workspace(tmp_path, trigger)
    _switch(tmp_path, False)
    watcher = Watcher(ws)
    watcher.run_once()
    assert ws.journal.operations("app") == []
    watcher.run_once()
    watcher.close()
    [operation] = ws.journal.operations("app")
    assert operation["kind"] == "rollback.notify"
    assert operation["status"] == "succeeded"
    assert operation["options"]["trigger"] == "switch"
    kinds = [a["kind"] for a in _alerts(tmp_path)]
    assert "rollback.notify" in kinds and ev.OPERATION_STARTED in kinds
    started = next(a for a in _alerts(tmp_path) if a["kind"] == ev.OPERATION_STARTED)
    assert started["severity"] == "warning"  # rollback started is a warning
    ws.close()

    (tmp_path / "bad").mkdir()
    bad = _workspace(tmp_path / "bad", trigger.replace("switch on", "no such check"))
    with pytest.raises(ConfigError, match="unknown check 'no such check'"):
        Watcher(bad)
    bad.close()


def test_inconclusive_samples_alert_but_never_act(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    trigger = SUGGEST.replace('mode = "suggest"', 'mode = "auto"').replace(
        "consecutive = 3", "consecutive = 1"
    )
    ws = _workspace(
        tmp_path, trigger, url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"
    )
    watcher = Watcher(ws)
    for _ in range(3):
        [sample] = watcher.run_once()
        assert not sample.conclusive
    watcher.close()
    assert ws.journal.operations("app") == []
    assert _fired(ws) == []
    [alert] = _fired(ws, ev.HEALTH_INCONCLUSIVE)  # once, on the change
    assert "cannot connect" in alert["message"]
    ws.close()


def test_rollback_plan_and_run_notify_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _workspace(tmp_path, SUGGEST).close()
    config = str(tmp_path / "dbr.toml")
    assert (
        main(
            [
                "--config",
                config,
                "rollback",
                "plan",
                "app",
                "--strategy",
                "notify",
                "--json",
            ]
        )
        == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["kind"] == "rollback.notify" and plan["steps"][0]["name"] == "notify"
    assert (
        main(["--config", config, "rollback", "run", "app", "--strategy", "notify"])
        == 3
    )  # not confirmed, not interactive
    capsys.readouterr()
    assert (
        main(
            [
                "--config",
                config,
                "rollback",
                "run",
                "app",
                "--strategy",
                "notify",
                "--yes",
            ]
        )
        == 0
    )
    assert "SUCCEEDED" in capsys.readouterr().out
    assert (
        main(
            ["--config", config, "rollback", "plan", "app", "--strategy", "downgrade:1"]
        )
        == 2
    )  # no Alembic project configured
    assert "needs app's Alembic project" in capsys.readouterr().err


DEMO_TOML = """
[state]
url = "sqlite:///state.db"
[targets.shop]
url = "sqlite:///shop.db"
alembic = "alembic.ini"
backup_dir = "backups/shop"
critical_tables = ["customers", "orders"]
[targets.shop.health]
threshold = 80
interval = 0.2
recovery_samples = 2
recovery_deadline = 60
disable = ["alembic heads"]
[[targets.shop.health.checks]]
name = "no status column yet"
sql = "select count(*) from pragma_table_info('orders') where name = 'status'"
max = 0
weight = 10
[[targets.shop.triggers]]
name = "bad release"
score_below = 70
consecutive = 2
strategy = "downgrade:1"
mode = "auto"
cooldown = 600
[alerts]
[[alerts.sinks]]
type = "jsonl"
path = "alerts.jsonl"
"""


def test_an_auto_trigger_downgrades_and_records_recovery(
    tmp_path: Path, capsys
) -> None:
    from core.demo import init_demo

    config = init_demo(tmp_path / "demo")
    config.write_text(DEMO_TOML)
    ws = Workspace.open(config)
    watcher = Watcher(ws)
    [first] = watcher.run_once()
    assert not first.healthy and first.score < 70  # the "release" broke a check
    assert ws.journal.operations("shop") == []
    watcher.run_once()  # the second bad sample fires the trigger, which acts
    watcher.close()

    rollbacks = ws.journal.operations("shop", kind="rollback.*")
    assert len(rollbacks) == 1, ws.journal.operations("shop")
    entry = ws.journal.operation(rollbacks[0]["id"])
    assert entry["status"] == "succeeded", entry["error"]
    assert entry["kind"] == "rollback.downgrade"
    steps = [s["name"] for s in entry["steps"]]
    assert steps == ["safety backup", "health before", "downgrade 70fa42"]
    assert entry["steps"][0]["detail"]["backup_id"]
    recovery = entry["result"]["results"]["recovery"]
    assert recovery["verdict"] == "recovered" and recovery["samples"] >= 2
    before = next(s for s in entry["steps"] if s["name"] == "health before")
    assert before["detail"]["healthy"] is False
    engine = make_engine(ws.target("shop").url)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("select version_num from alembic_version")).scalar()
            == "60e91c"
        )
    engine.dispose()
    assert health.sample(ws, "shop").healthy
    summary = metrics.summary(ws.journal)
    assert summary["trigger_to_recovery"]["count"] == 1
    assert summary["trigger_to_recovery"]["last"] > 0
    kinds = [a["kind"] for a in _alerts(tmp_path / "demo")]
    assert ev.TRIGGER_FIRED in kinds and ev.HEALTH_RECOVERED in kinds
    assert ev.OPERATION_SUCCEEDED in kinds
    ws.close()

    assert main(["--config", str(config), "metrics"]) == 0
    assert "trigger to recovery" in capsys.readouterr().out


def _rows_workspace(tmp_path: Path) -> Workspace:
    db = tmp_path / "app.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (x integer)"))
        conn.execute(sa.text("insert into t values (1), (2), (3)"))
    engine.dispose()
    config = tmp_path / "dbr.toml"
    config.write_text(f"""
[state]
url = "sqlite:///{tmp_path / "state.db"}"
[targets.app]
url = "sqlite:///{db}"
backup_dir = "{tmp_path / "backups"}"
[targets.app.health]
interval = 0.2
recovery_samples = 2
recovery_deadline = 60
[[targets.app.health.checks]]
name = "rows in t"
sql = "select count(*) from t"
min = 3
weight = 20
[[targets.app.triggers]]
name = "rows lost"
checks_failing = ["rows in t"]
strategy = "restore:latest-verified"
mode = "auto"
""")
    return Workspace.open(config)


def test_an_auto_trigger_restores_the_latest_verified_backup(tmp_path: Path) -> None:
    from core import backups

    ws = _rows_workspace(tmp_path)
    backup = backups.create_backup(ws, "app")
    assert backups.verify_backup(ws, backup.id).ok
    engine = make_engine(ws.target("app").url)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from t"))
    watcher = Watcher(ws)
    [sample] = watcher.run_once()
    watcher.close()
    assert sample.failing == ["rows in t"]
    [entry] = ws.journal.operations("app", kind="rollback.*")
    assert entry["kind"] == "rollback.restore" and entry["status"] == "succeeded", (
        entry["error"]
    )
    assert entry["plan"]["engine_kind"] == "backup.restore"
    assert entry["result"]["results"]["recovery"]["verdict"] == "recovered"
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from t")).scalar() == 3
    engine.dispose()
    ws.close()


def test_restore_without_a_verified_backup_is_refused_and_alerted(
    tmp_path: Path,
) -> None:
    from core.errors import DbrError
    from core.rollback import plan_strategy

    ws = _rows_workspace(tmp_path)
    with pytest.raises(DbrError, match="app has no verified backup"):
        plan_strategy(ws, "app", "restore:latest-verified")
    engine = make_engine(ws.target("app").url)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from t"))
    engine.dispose()
    watcher = Watcher(ws)
    watcher.run_once()
    watcher.close()
    assert ws.journal.operations("app") == []
    [failed] = ws.journal.events("app", kinds=(ev.OPERATION_FAILED,))
    assert failed["severity"] == "critical"
    assert (
        "did not start" in failed["message"]
        and "no verified backup" in failed["message"]
    )
    ws.close()


def test_rollback_run_records_still_unhealthy_when_health_does_not_return(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from core.demo import init_demo

    config = init_demo(tmp_path / "demo")
    config.write_text(
        DEMO_TOML.replace("recovery_deadline = 60", "recovery_deadline = 1")
        + """
[[targets.shop.health.checks]]
name = "never passes"
sql = "select 0"
min = 1
weight = 1
required = true
"""
    )
    code = main(
        [
            "--config",
            str(config),
            "rollback",
            "run",
            "shop",
            "--strategy",
            "downgrade:1",
            "--yes",
            "--json",
        ]
    )
    outcome = json.loads(capsys.readouterr().out)
    assert code == 1
    assert outcome["status"] == "failed"
    assert outcome["results"]["recovery"]["verdict"] == "still unhealthy"
    assert outcome["results"]["recovery"]["failing"] == ["never passes"]
    [check] = [c for c in outcome["postconditions"] if "health" in c["check"]]
    assert not check["ok"] and check["detail"].startswith("still unhealthy after")
    ws = Workspace.open(config)
    entry = ws.journal.operation(outcome["operation_id"])
    assert entry["kind"] == "rollback.downgrade" and entry["status"] == "failed"
    assert entry["result"]["results"]["recovery"]["verdict"] == "still unhealthy"
    assert [s["name"] for s in entry["steps"]][-1] == "downgrade 70fa42"
    degraded = ws.journal.events("shop", kinds=(ev.HEALTH_DEGRADED,))
    assert degraded[0]["severity"] == "critical"
    assert "still unhealthy after the rollback" in degraded[0]["message"]
    ws.close()


def test_stopping_during_the_recovery_check_records_unconfirmed(tmp_path: Path) -> None:
    import threading

    from core.demo import init_demo
    from core.rollback import run_rollback

    config = init_demo(tmp_path / "demo")
    config.write_text(DEMO_TOML)
    ws = Workspace.open(config)
    cancel = threading.Event()

    def stop_after_downgrade(event: ev.Event) -> None:
        if event.kind == ev.STEP_FINISHED and event.data.get("step", "").startswith(
            "downgrade"
        ):
            cancel.set()  # as SIGTERM to `dbr watch` would, between steps

    ws.bus.subscribe(stop_after_downgrade)
    outcome = run_rollback(ws, "shop", "downgrade:1", cancel=cancel)
    assert outcome.status == "failed"
    recovery = outcome.results["recovery"]
    assert recovery["verdict"] == "unconfirmed" and recovery["samples"] == 1
    [check] = [c for c in outcome.postconditions if "health" in c["check"]]
    assert check["detail"].startswith("recovery not confirmed: stopped")
    assert ws.journal.events("shop", kinds=(ev.HEALTH_DEGRADED,)) == []
    ws.close()


def test_watch_once_from_cron_continues_the_streak(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _workspace(tmp_path, SUGGEST).close()
    _switch(tmp_path, False)
    config = str(tmp_path / "dbr.toml")
    for expected in (0, 0, 1, 1):
        assert main(["--config", config, "watch", "--once"]) == 1
        ws = Workspace.open(config)
        assert len(_fired(ws)) == expected
        ws.close()
    assert "UNHEALTHY" in capsys.readouterr().out
