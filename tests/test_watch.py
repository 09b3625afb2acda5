"""`dbr watch`: a server that goes away and comes back, signals, --once, metrics."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from core import events as ev
from core.targets import make_engine
from core.watch import Watcher
from core.workspace import Workspace

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DBR = Path(sys.executable).with_name("dbr")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll until condition holds; a generous limit only guards against a hang."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


class ThrowawayPostgres:
    """A PostgreSQL instance of our own in a temporary folder, on its own port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dbr-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.run_as = ["runuser", "-u", "nobody", "--"] if os.getuid() == 0 else []
        if self.run_as:
            shutil.chown(self.dir, "nobody")
        self._run(
            PG_BIN / "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )

    def _run(self, *args: object) -> None:
        subprocess.run(
            [*self.run_as, *map(str, args)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        )
        self._run(
            PG_BIN / "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return None
        return int(pidfile.read_text().split()[0])

    def stop(self) -> None:
        """Fast shutdown of our own postmaster, by its pid."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        _wait_for(
            lambda: not (self.data / "postmaster.pid").exists(),
            "the throwaway server to stop",
        )

    def processes(self) -> list[int]:
        """The postmaster and its children: every process of this instance."""
        postmaster = self.pid()
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(stat.parent.name))
        return pids

    def freeze(self, frozen: bool) -> None:
        """Stop (SIGSTOP) or resume our own instance: a server that hangs."""
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
            except ProcessLookupError:
                pass

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("SKIPPING: PostgreSQL 15 server binaries are not installed")
    server = ThrowawayPostgres()
    server.start()
    yield server
    server.remove()


def _config(tmp_path: Path, targets: dict[str, str], extra: str = "") -> Path:
    lines = [f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"']
    for name, url in targets.items():
        lines.append(
            f'[targets.{name}]\nurl = "{url}"\n[targets.{name}.health]\n'
            f"interval = 0.3\ntimeout = 2\n{extra}"
        )
    lines.append(
        f'[alerts]\nquiet_period = 300\n[[alerts.sinks]]\ntype = "jsonl"\n'
        f'path = "{tmp_path / "alerts.jsonl"}"'
    )
    path = tmp_path / "dbr.toml"
    path.write_text("\n".join(lines))
    return path


def _sqlite(tmp_path: Path, name: str = "app") -> str:
    path = tmp_path / f"{name}.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (x integer)"))
    engine.dispose()
    return f"sqlite:///{path}"


def test_watch_survives_its_server_stopping_and_starting_again(
    tmp_path: Path, throwaway_pg: ThrowawayPostgres
) -> None:
    ws = Workspace.open(_config(tmp_path, {"pg": throwaway_pg.url}))
    seen: list[str] = []

    def record(sample: object) -> None:
        seen.append(
            "healthy"
            if sample.healthy
            else "unhealthy"
            if sample.conclusive
            else "inconclusive"
        )

    watcher = Watcher(ws, on_sample=record)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        _wait_for(lambda: "healthy" in seen, "a healthy sample")
        throwaway_pg.stop()
        _wait_for(lambda: seen[-1] == "inconclusive", "an inconclusive sample")
        throwaway_pg.start()
        _wait_for(lambda: seen[-1] == "healthy", "a healthy sample after restart")
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    kinds = [e["kind"] for e in reversed(ws.journal.events("pg"))]
    assert kinds.index(ev.HEALTH_INCONCLUSIVE) < kinds.index(ev.HEALTH_RECOVERED)
    assert ws.journal.operations("pg") == []  # an unreachable server is never acted on
    alerts = [
        json.loads(line)
        for line in (tmp_path / "alerts.jsonl").read_text().splitlines()
    ]
    assert [a["kind"] for a in alerts] == [ev.HEALTH_INCONCLUSIVE, ev.HEALTH_RECOVERED]
    ws.close()


def _start_watch(config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(DBR), "--config", str(config), "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_watch_stops_cleanly_on_sigterm_and_ctrl_c(tmp_path: Path, signum: int) -> None:
    config = _config(
        tmp_path, {"a": _sqlite(tmp_path, "a"), "b": _sqlite(tmp_path, "b")}
    )
    process = _start_watch(config)
    try:
        first = process.stdout.readline()
        assert "score 100" in first
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "watch stopped" in err
    assert "Traceback" not in err


def test_watch_once_samples_every_target(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {"a": _sqlite(tmp_path, "a"), "gone": f"sqlite:///{tmp_path / 'gone.db'}"},
    )
    result = subprocess.run(
        [str(DBR), "--config", str(config), "watch", "--once", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1  # one target is not healthy
    samples = {s["target"]: s for s in json.loads(result.stdout)}
    assert samples["a"]["healthy"] is True
    assert samples["gone"]["healthy"] is False and samples["gone"]["score"] == 0
    assert not (tmp_path / "gone.db").exists()


def test_watch_serves_prometheus_metrics_on_loopback(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": _sqlite(tmp_path, "a")})
    port = _free_port()
    process = _start_watch(config, "--metrics-port", str(port))
    try:
        assert "score 100" in process.stdout.readline()
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert 'dbr_health_score{target="a"} 100.0' in body
    assert 'dbr_health_check_ok{check="round trip",target="a"} 1.0' in body
    assert "# TYPE dbr_operations_total counter" in body
    assert "dbr_trigger_to_recovery_seconds" in body
    assert process.returncode == 0


def test_watch_names_a_missing_target(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": _sqlite(tmp_path, "a")})
    result = subprocess.run(
        [str(DBR), "--config", str(config), "watch", "nope", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no target named 'nope'" in result.stderr


def test_dbr_health_watch_streams_json_samples_until_ctrl_c(tmp_path: Path) -> None:
    config = _config(tmp_path, {"a": _sqlite(tmp_path, "a")})
    process = subprocess.Popen(
        [str(DBR), "--config", str(config), "health", "a", "--watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(process.stdout.readline())
        second = json.loads(process.stdout.readline())
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert first["target"] == "a" and first["healthy"] is True
    assert second["at"] > first["at"]
    assert process.returncode == 0, err


def test_a_hung_server_is_reported_inconclusive_without_piling_up_threads(
    tmp_path: Path, throwaway_pg: ThrowawayPostgres
) -> None:
    # A tight timeout makes the deadline short: a hung probe is overdue quickly.
    path = _config(tmp_path, {"pg": throwaway_pg.url})
    path.write_text(path.read_text().replace("timeout = 2", "timeout = 0.2"))
    ws = Workspace.open(path)
    seen: list[object] = []
    watcher = Watcher(ws, on_sample=seen.append)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        _wait_for(lambda: seen and seen[-1].healthy, "a healthy sample")
        throwaway_pg.freeze(True)
        try:
            _wait_for(
                lambda: len([s for s in seen if not s.conclusive]) >= 3,
                "three inconclusive samples from the hung server",
            )
            threads = threading.active_count()
        finally:
            throwaway_pg.freeze(False)
        _wait_for(lambda: seen[-1].healthy, "a healthy sample after the thaw")
    finally:
        stop.set()
        thread.join(60)
    hung = [s for s in seen if not s.conclusive]
    assert "no answer within" in hung[0].checks[0].error
    assert threads <= 4  # the stuck probe holds one worker; no new ones per sample
    kinds = [e["kind"] for e in reversed(ws.journal.events("pg"))]
    assert kinds.index(ev.HEALTH_INCONCLUSIVE) < kinds.index(ev.HEALTH_RECOVERED)
    ws.close()


def test_dbr_watch_acts_on_an_auto_trigger_and_keeps_watching(tmp_path: Path) -> None:
    extra = """[[targets.a.health.checks]]
name = "never passes"
sql = "select 0"
min = 1
weight = 20
[[targets.a.triggers]]
name = "broken"
checks_failing = ["never passes"]
consecutive = 2
strategy = "notify"
mode = "auto"
cooldown = 3600
"""
    config = _config(tmp_path, {"a": _sqlite(tmp_path, "a")}, extra)
    process = _start_watch(config)
    ws = Workspace.open(config)
    try:
        _wait_for(lambda: ws.journal.operations("a"), "the automatic rollback")
        _wait_for(
            lambda: ws.journal.operations("a")[0]["status"] == "succeeded",
            "the rollback to finish",
        )
        assert process.poll() is None  # the watch carries on after acting
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    [operation] = ws.journal.operations("a")
    assert operation["kind"] == "rollback.notify"
    assert operation["options"]["trigger"] == "broken"
    assert process.returncode == 0, err
    ws.close()
