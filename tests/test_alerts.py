"""Alert sinks against a real HTTP server on loopback: up, down, slow, failing."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import events as ev
from core.alerts import JsonLinesSink, Router
from core.events import Event, Severity
from core.rollback import run_rollback
from core.targets import make_engine
from core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


class Hook(ThreadingHTTPServer):
    """A webhook receiver: answers 200 or 500, or holds a request until released."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.bodies: list[dict] = []
        self.attempts = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/T0KEN-s3cret"


class _Handler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length))
        self.server.attempts += 1
        if self.server.mode == "slow":
            self.server.holding.set()
            self.server.release.wait(60)
        status = 500 if self.server.mode == "500" else 200
        if status == 200:
            self.server.bodies.append(body)
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _workspace(
    tmp_path: Path, url: str, *, timeout: float = 5, retries: int = 1
) -> Workspace:
    db = tmp_path / "app.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (x integer)"))
    engine.dispose()
    config = tmp_path / "dbr.toml"
    config.write_text(f"""
[state]
url = "sqlite:///{tmp_path / "state.db"}"
[targets.app]
url = "sqlite:///{db}"
[alerts]
[[alerts.sinks]]
type = "webhook"
url = "{url}"
min_severity = "warning"
timeout = {timeout}
retries = {retries}
""")
    return Workspace.open(config)


def _failures(ws: Workspace) -> list[dict]:
    return ws.journal.events("app", kinds=(ev.ALERT_FAILED,))


def test_a_webhook_receives_rollback_alerts(tmp_path: Path, hook: Hook) -> None:
    ws = _workspace(tmp_path, hook.url)
    outcome = run_rollback(ws, "app", "notify")
    assert outcome.ok
    _wait_for(
        lambda: (
            any(b["kind"] == ev.OPERATION_SUCCEEDED for b in hook.bodies)
            or len(hook.bodies) >= 2
        ),
        "the alerts",
    )
    ws.close()
    kinds = [b["kind"] for b in hook.bodies]
    assert ev.OPERATION_STARTED in kinds and "rollback.notify" in kinds
    # min_severity = warning: the "succeeded" alert (info) is not sent
    assert ev.OPERATION_SUCCEEDED not in kinds
    notify = next(b for b in hook.bodies if b["kind"] == "rollback.notify")
    assert notify["text"].startswith("[CRITICAL] app: app needs a person")
    assert notify["target"] == "app" and notify["severity"] == "critical"
    assert _failures(ws) == []


def test_a_webhook_answering_500_is_retried_then_journaled(
    tmp_path: Path, hook: Hook
) -> None:
    hook.mode = "500"
    ws = _workspace(tmp_path, hook.url, retries=1)
    assert run_rollback(ws, "app", "notify").ok
    _wait_for(lambda: len(_failures(ws)) >= 2, "the failures in the journal")
    ws.close()
    failure = _failures(ws)[-1]  # oldest first: the rollback started alert
    assert failure["data"]["event"] == ev.OPERATION_STARTED
    assert "HTTP 500" in failure["message"] and "2 attempt(s)" in failure["message"]
    assert "T0KEN-s3cret" not in json.dumps(_failures(ws))  # the URL's secret
    assert hook.attempts >= 4


def test_a_webhook_that_is_down_is_journaled(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ws = _workspace(tmp_path, f"http://127.0.0.1:{port}/hook", retries=0)
    outcome = run_rollback(ws, "app", "notify")
    assert outcome.ok
    _wait_for(lambda: len(_failures(ws)) >= 2, "the failures in the journal")
    ws.close()
    assert "ConnectError" in _failures(ws)[0]["message"]


def test_a_slow_webhook_never_holds_up_a_rollback(tmp_path: Path, hook: Hook) -> None:
    hook.mode = "slow"
    ws = _workspace(tmp_path, hook.url, timeout=120)
    outcome = run_rollback(ws, "app", "notify")
    # The rollback is done while no alert has been answered: a sink that blocked
    # would still be waiting for the receiver, which answers only when released.
    assert outcome.ok
    assert not hook.release.is_set() and hook.bodies == []
    _wait_for(hook.holding.is_set, "the receiver to hold the first alert")
    assert hook.bodies == []
    assert ws.journal.operation(outcome.operation_id)["status"] == "succeeded"
    hook.release.set()
    _wait_for(lambda: len(hook.bodies) >= 2, "the held alerts to arrive")
    ws.close()
    assert _failures(ws) == []


def test_alerts_a_webhook_has_not_taken_when_dbr_stops_waiting_are_journaled(
    tmp_path: Path, hook: Hook
) -> None:
    hook.mode = "slow"
    ws = _workspace(tmp_path, hook.url, timeout=120)
    outcome = run_rollback(ws, "app", "notify")
    _wait_for(hook.holding.is_set, "the receiver to hold the first alert")
    ws.close(timeout=0.2)  # the receiver still holds the first; one more waits
    ws.close(timeout=0.2)  # closed once: nothing is waited for or journaled twice
    sent = [f["data"]["event"] for f in _failures(ws)]
    assert sorted(sent) == sorted([ev.OPERATION_STARTED, "rollback.notify"])
    assert all(
        f["data"]["error"].endswith(
            ": not confirmed delivered when dbr stopped waiting"
        )
        for f in _failures(ws)
    )
    assert all(f["operation_id"] == outcome.operation_id for f in _failures(ws))


def _router(path: Path, quiet: float) -> tuple[Router, list[Event]]:
    failures: list[Event] = []
    return Router(
        [JsonLinesSink(path, Severity.INFO)], quiet, failures.append
    ), failures


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_repeated_health_alerts_are_grouped_in_the_quiet_period(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    router, failures = _router(path, quiet=300)
    for _ in range(4):
        router(Event(ev.HEALTH_DEGRADED, "a degraded", Severity.WARNING, target="a"))
    router(Event(ev.HEALTH_DEGRADED, "b degraded", Severity.WARNING, target="b"))
    router(Event(ev.OPERATION_FAILED, "a failed", Severity.CRITICAL, target="a"))
    router(Event(ev.HEALTH_RECOVERED, "a recovered", target="a"))
    router(Event(ev.HEALTH_DEGRADED, "a degraded again", Severity.WARNING, target="a"))
    messages = [line["message"] for line in _lines(path)]
    assert messages == [
        "a degraded",
        "b degraded",
        "a failed",
        "a recovered (3 similar alerts grouped in the quiet period)",
        "a degraded again",
    ]
    assert failures == []


def test_a_severer_repeat_is_sent_and_a_late_one_carries_the_count(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.jsonl"
    router, _ = _router(path, quiet=0.3)
    router(Event(ev.HEALTH_DEGRADED, "warn", Severity.WARNING, target="a"))
    router(Event(ev.HEALTH_DEGRADED, "warn 2", Severity.WARNING, target="a"))
    router(Event(ev.HEALTH_DEGRADED, "critical", Severity.CRITICAL, target="a"))
    router(Event(ev.HEALTH_DEGRADED, "critical 2", Severity.CRITICAL, target="a"))
    time.sleep(0.4)  # let the quiet period pass
    router(Event(ev.HEALTH_DEGRADED, "later", Severity.WARNING, target="a"))
    messages = [line["message"] for line in _lines(path)]
    assert messages == [
        "warn",
        "critical (1 similar alerts grouped in the quiet period)",
        "later (1 similar alerts grouped in the quiet period)",
    ]


def test_step_progress_and_samples_never_reach_a_sink(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    router, _ = _router(path, quiet=300)
    for kind in (
        ev.HEALTH_SAMPLED,
        ev.STEP_PROGRESS,
        ev.STEP_STARTED,
        ev.STEP_FINISHED,
    ):
        router(Event(kind, kind, target="a"))
    router(Event(ev.TRIGGER_FIRED, "fired", Severity.WARNING, target="a"))
    assert [line["kind"] for line in _lines(path)] == [ev.TRIGGER_FIRED]


def test_dbr_rollback_run_delivers_its_alerts_before_it_exits(
    tmp_path: Path, hook: Hook, capsys: pytest.CaptureFixture
) -> None:
    from console.cli import main

    _workspace(tmp_path, hook.url).close()
    code = main(
        [
            "--config",
            str(tmp_path / "dbr.toml"),
            "rollback",
            "run",
            "app",
            "--strategy",
            "notify",
            "--yes",
        ]
    )
    assert code == 0, capsys.readouterr().err
    # No waiting here: the command flushed the webhook queue before returning.
    kinds = [b["kind"] for b in hook.bodies]
    assert ev.OPERATION_STARTED in kinds and "rollback.notify" in kinds


def test_an_alert_with_data_json_cannot_encode_is_still_delivered(
    tmp_path: Path, hook: Hook
) -> None:
    from datetime import UTC, datetime

    ws = _workspace(tmp_path, hook.url)
    ws.start_alerts()
    ws.bus.emit(
        ev.BACKUP_FAILED,
        "backup failed",
        severity=Severity.CRITICAL,
        target="app",
        data={"when": datetime(2026, 1, 2, tzinfo=UTC)},
    )
    ws.bus.emit(
        ev.VERIFY_FAILED, "verify failed", severity=Severity.CRITICAL, target="app"
    )
    ws.close()  # waits for the queue to drain
    assert [b["kind"] for b in hook.bodies] == [ev.BACKUP_FAILED, ev.VERIFY_FAILED]
    assert hook.bodies[0]["data"]["when"].startswith("2026-01-02")


def test_a_backup_verb_that_fails_delivers_its_alerts_before_it_exits(
    tmp_path: Path, hook: Hook, capsys: pytest.CaptureFixture
) -> None:
    from console.cli import main

    _workspace(tmp_path, hook.url).close()
    config = ["--config", str(tmp_path / "dbr.toml")]
    assert main([*config, "--json", "backups", "create", "app"]) == 0
    made = json.loads(capsys.readouterr().out)
    path = Path(made["path"])
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))

    assert main([*config, "backups", "verify", made["id"]]) != 0
    # No waiting here: main() flushed the webhook queue before it returned.
    failed = [b for b in hook.bodies if b["kind"] == ev.OPERATION_FAILED]
    assert failed and failed[0]["target"] == "app", hook.bodies
    assert "verif" in failed[0]["text"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_while_dbr_waits_for_a_webhook_at_exit_journals_what_is_left(
    tmp_path: Path, hook: Hook, stop: signal.Signals
) -> None:
    hook.mode = "slow"
    ws = _workspace(tmp_path, hook.url, timeout=120)
    ws.close()
    config = tmp_path / "dbr.toml"
    config.write_text(config.read_text().replace('"warning"', '"info"'))
    run = subprocess.Popen(
        [sys.executable, "-c", "from console.cli import entry; entry()"]
        + ["--config", str(config), "backups", "create", "app"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ws = Workspace.open(config)

    def backed_up() -> bool:
        done = ws.journal.operations("app", kind="backup.create")
        return bool(done) and done[0]["status"] == "succeeded"

    _wait_for(backed_up, "the backup")
    _wait_for(hook.holding.is_set, "the receiver to hold the first alert")
    run.send_signal(stop)  # dbr is done, and waits for the webhook
    _, stderr = run.communicate(timeout=60)

    assert run.returncode == 0, stderr  # the backup stands
    assert "Traceback" not in stderr
    left = {f["data"]["event"] for f in _failures(ws)}
    assert left == {ev.OPERATION_STARTED, ev.OPERATION_SUCCEEDED}
    ws.close()
