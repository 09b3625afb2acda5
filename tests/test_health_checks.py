"""Health checks and the score against real databases: dropped, locked, slow, gone."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from console.cli import main
from core.config import CheckConfig, HealthConfig
from core.health import Monitor
from core.health.checks import FAILING, OK, TIMEOUT, UNREACHABLE
from core.health.monitor import recent_samples
from core.state import Store
from core.targets import make_engine
from tests.conftest import make_target


def _health(**kwargs: object) -> HealthConfig:
    return HealthConfig(**kwargs)  # type: ignore[arg-type]


def _make_orders(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("create table orders (id integer primary key, total integer)")
        )
        conn.execute(sa.text("insert into orders (id, total) values (1, 10), (2, 20)"))
    engine.dispose()


ORDERS = CheckConfig(
    name="orders exist", sql="select count(*) from orders", min=1, weight=3, timeout=2
)


def test_every_built_in_check_passes_on_a_sound_database(any_url: str) -> None:
    _make_orders(any_url)
    target = make_target(
        any_url, critical_tables=("orders",), health=_health(checks=(ORDERS,))
    )
    monitor = Monitor(None)
    try:
        sample = monitor.sample(target, keep=False)
    finally:
        monitor.close()
    assert sample.conclusive and sample.healthy, sample.explanation
    assert sample.score == 100
    names = [c.name for c in sample.checks]
    assert names[:3] == ["round trip", "latency", "critical tables"]
    assert names[-1] == "orders exist"
    expected = {
        "postgresql": "blocked sessions",
        "mysql": "threads running",
        "sqlite": "quick_check",
    }[target.dialect]
    assert expected in names
    assert sample.check("orders exist").value == 2


def test_a_dropped_table_fails_its_check_and_lowers_the_score(any_url: str) -> None:
    _make_orders(any_url)
    target = make_target(
        any_url, critical_tables=("orders",), health=_health(checks=(ORDERS,))
    )
    engine = make_engine(any_url)
    with engine.begin() as conn:
        conn.execute(sa.text("drop table orders"))
    engine.dispose()
    monitor = Monitor(None)
    try:
        sample = monitor.sample(target, keep=False)
    finally:
        monitor.close()
    assert sample.conclusive
    check = sample.check("orders exist")
    assert check.status == FAILING and "orders" in check.error
    tables = sample.check("critical tables")
    assert tables.status == FAILING and "unreadable: orders" in tables.detail
    total = sum(c.weight for c in sample.checks)
    assert sample.score == round(100 * (total - 3 - 2) / total, 1)
    lowered = {item["check"]: item["points"] for item in sample.lowered_by}
    assert lowered["orders exist"] == round(100 * 3 / total, 1)
    assert any(
        line.startswith(f"-{lowered['orders exist']:g} orders exist")
        for line in sample.explanation
    )


def test_a_table_locked_by_another_session_makes_its_check_time_out(
    any_url: str, tmp_path: Path
) -> None:
    _make_orders(any_url)
    check = CheckConfig(
        name="orders exist", sql="select count(*) from orders", min=1, timeout=1
    )
    target = make_target(any_url, health=_health(checks=(check,)))
    holder = make_engine(any_url)
    conn = holder.connect()
    if target.dialect == "postgresql":
        conn.execute(sa.text("lock table orders in access exclusive mode"))
    elif target.dialect == "mysql":
        conn.exec_driver_sql("lock tables orders write")
    else:
        conn.exec_driver_sql("pragma journal_mode=delete")
        conn.commit()
        conn.connection.driver_connection.isolation_level = None
        conn.exec_driver_sql("begin exclusive")
        conn.exec_driver_sql("update orders set total = total + 1")
    monitor = Monitor(None)
    try:
        sample = monitor.sample(target, keep=False)
    finally:
        monitor.close()
        if target.dialect == "mysql":
            conn.exec_driver_sql("unlock tables")
        elif target.dialect == "sqlite":
            conn.exec_driver_sql("rollback")
        conn.close()
        holder.dispose()
    result = sample.check("orders exist")
    assert result.status == TIMEOUT, result.to_dict()
    assert not result.ok and "no answer within 1 s" in result.error
    assert sample.conclusive  # the round trip still answered


@pytest.mark.postgres
def test_a_slow_check_is_stopped_by_its_timeout(pg_url: str) -> None:
    slow = CheckConfig(
        name="slow", sql="select 1 from pg_sleep(30)", min=1, timeout=0.5, required=True
    )
    target = make_target(pg_url, health=_health(checks=(slow,)))
    monitor = Monitor(None)
    try:
        sample = monitor.sample(target, keep=False)
    finally:
        monitor.close()
    result = sample.check("slow")
    assert result.status == TIMEOUT
    assert "statement timeout" in result.error
    # A failing required check keeps the target unhealthy whatever else passes.
    assert not sample.healthy and sample.score < sample.threshold
    assert any("capped" in line and "slow" in line for line in sample.explanation)


def test_a_missing_sqlite_file_fails_and_is_never_created(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    target = make_target(f"sqlite:///{path}")
    monitor = Monitor(None)
    try:
        sample = monitor.sample(target, keep=False)
    finally:
        monitor.close()
    assert not path.exists()
    assert sample.conclusive and not sample.healthy and sample.score == 0
    assert sample.check("round trip").status == FAILING
    assert "gone.db" in sample.check("round trip").error


def test_a_server_that_refuses_connections_gives_an_inconclusive_sample() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = make_target(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
    monitor = Monitor(None)
    try:
        sample = monitor.sample(target, keep=False)
    finally:
        monitor.close()
    assert not sample.conclusive and not sample.healthy and sample.score is None
    assert {c.status for c in sample.checks} == {UNREACHABLE}
    assert "cannot connect" in sample.explanation[0]


def test_a_non_numeric_or_empty_answer_fails_the_check(sqlite_url: str) -> None:
    _make_orders(sqlite_url)
    checks = (
        CheckConfig(name="text", sql="select 'abc'", min=0),
        CheckConfig(name="empty", sql="select id from orders where id < 0", max=1),
        CheckConfig(name="too many", sql="select count(*) from orders", max=1),
    )
    target = make_target(sqlite_url, health=_health(checks=checks))
    monitor = Monitor(None)
    sample = monitor.sample(target, keep=False)
    monitor.close()
    assert "not a number" in sample.check("text").detail
    assert "no value" in sample.check("empty").detail
    too_many = sample.check("too many")
    assert too_many.value == 2 and "above its limit (max 1)" in too_many.detail


def test_alembic_heads_compares_the_database_with_the_project(tmp_path: Path) -> None:
    from core.demo import init_demo

    config = init_demo(tmp_path / "demo")
    from core.config import load

    settings = load(config)
    target = make_target(
        settings.targets["shop"].url, alembic=settings.targets["shop"].alembic
    )
    monitor = Monitor(None)
    assert monitor.sample(target, keep=False).check("alembic heads").status == OK
    engine = make_engine(target.url)
    with engine.begin() as conn:
        conn.execute(sa.text("update alembic_version set version_num = '60e91c'"))
    engine.dispose()
    check = Monitor(None).sample(target, keep=False).check("alembic heads")
    assert check.status == FAILING
    assert check.value == "60e91c" and "project heads 70fa42" in check.detail
    monitor.close()


def test_samples_are_kept_with_bounded_retention(
    sqlite_url: str, state_url: str
) -> None:
    _make_orders(sqlite_url)
    target = make_target(sqlite_url, name="kept", health=_health(keep_samples=10))
    store = Store(state_url)
    monitor = Monitor(store)
    for _ in range(14):
        monitor.sample(target)
    monitor.close()
    kept = recent_samples(store, "kept", limit=100)
    assert len(kept) == 10
    assert kept[0].at > kept[-1].at and kept[0].healthy
    assert kept[0].check("round trip").ok
    store.close()


def test_samples_from_many_threads_share_one_monitor(sqlite_url: str) -> None:
    _make_orders(sqlite_url)
    targets = [make_target(sqlite_url, name=f"t{i}") for i in range(6)]
    monitor = Monitor(None)
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda t=t: results.append(monitor.sample(t, keep=False).healthy)
        )
        for t in targets
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monitor.close()
    assert results == [True] * 6


def test_dbr_health_json_and_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    db = tmp_path / "shop.db"
    _make_orders(f"sqlite:///{db}")
    config = tmp_path / "dbr.toml"
    config.write_text(f"""
[state]
url = "sqlite:///{tmp_path / "state.db"}"
[targets.shop]
url = "sqlite:///{db}"
[targets.shop.health]
threshold = 90
[[targets.shop.health.checks]]
name = "big orders"
sql = "select count(*) from orders where total > 100"
min = 1
weight = 3
required = true
""")
    code = main(["--config", str(config), "health", "shop", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["healthy"] is False and out["threshold"] == 90
    assert out["score"] < 90
    big = next(c for c in out["checks"] if c["name"] == "big orders")
    assert big == big | {"ok": False, "value": 0, "weight": 3.0, "required": True}
    assert set(big) >= {"name", "ok", "value", "weight", "required", "error"}

    code = main(["--config", str(config), "health", "shop"])
    text = capsys.readouterr().out
    assert code == 1
    assert "UNHEALTHY" in text and "big orders" in text
    assert "-33.3 big orders (required): 0 is below its limit (min 1)" in text


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_a_server_that_accepts_but_never_answers_is_inconclusive(scheme: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:  # accept every connection and say nothing, ever
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    target = make_target(f"{scheme}://u@127.0.0.1:{port}/x", health=_health(timeout=1))
    monitor = Monitor(None)
    try:
        sample = monitor.sample(target, keep=False)
    finally:
        monitor.close()
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
    assert held  # the probe did reach the silent server
    assert not sample.conclusive and not sample.healthy and sample.score is None


@pytest.mark.postgres
def test_postgresql_blocked_sessions_and_long_transactions(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.health import postgresql

    monkeypatch.setattr(postgresql, "BLOCKED_FOR", 0.2)
    monkeypatch.setattr(postgresql, "LONG_TRANSACTION_MAX", 0.2)
    _make_orders(pg_url)
    holder = make_engine(pg_url)
    locker = holder.connect()
    locker.execute(sa.text("lock table orders in access exclusive mode"))
    waiter_engine = make_engine(pg_url)

    def wait_for_lock() -> None:
        with waiter_engine.connect() as conn:
            conn.execute(sa.text("select count(*) from orders")).scalar()

    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    target = make_target(pg_url)
    monitor = Monitor(None)
    try:
        deadline = time.monotonic() + 30
        while True:  # until the sessions have waited longer than the limits
            sample = monitor.sample(target, keep=False)
            failing = set(sample.failing)
            if {
                "blocked sessions",
                "long transactions",
            } <= failing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        monitor.close()
        locker.rollback()
        locker.close()
        waiter.join()
        holder.dispose()
        waiter_engine.dispose()
    blocked = sample.check("blocked sessions")
    assert blocked.status == FAILING and blocked.value == 1
    assert "1 session(s) waiting on a lock" in blocked.detail
    longest = sample.check("long transactions")
    assert longest.status == FAILING and longest.value > 0.2, longest.to_dict()
    assert sample.conclusive


@pytest.mark.postgres
def test_a_killed_health_connection_is_replaced_on_the_next_sample(
    pg_url: str,
) -> None:
    target = make_target(pg_url)
    monitor = Monitor(None)
    admin = make_engine(pg_url)
    try:
        assert monitor.sample(target, keep=False).healthy
        with admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where application_name = 'dbr-health' "
                    "and datname = current_database()"
                )
            ).scalar()
        assert killed == 1
        assert monitor.sample(target, keep=False).healthy
    finally:
        monitor.close()
        admin.dispose()
