"""The executor runs any plan: lock, journal, steps, cancel, checks, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core import events as ev
from core.errors import LockHeld, NotConfirmed
from core.events import Bus, Event
from core.executor import Executor
from core.journal import INTERRUPTED, Journal
from core.plans import Context, Plan, Postcondition, Step
from core.state import Store
from tests.conftest import make_target

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def journal(state_url: str) -> Journal:
    return Journal(Store(state_url))


def recording(journal: Journal) -> tuple[Executor, list[Event]]:
    bus = Bus()
    seen: list[Event] = []
    bus.subscribe(journal.record)
    bus.subscribe(seen.append)
    return Executor(journal, bus), seen


def step(name: str, action=None, **kwargs) -> Step:
    return Step(name, f"do {name}", run=action or (lambda ctx: {"did": name}), **kwargs)


def test_a_plan_runs_every_step_in_order_and_the_journal_says_so(
    journal: Journal, sqlite_url: str
) -> None:
    executor, seen = recording(journal)
    order: list[str] = []
    plan = Plan(
        "test.run",
        "t",
        "three steps",
        steps=[
            step(name, lambda ctx, n=name: order.append(n)) for name in ("a", "b", "c")
        ],
        postconditions=[
            Postcondition("all ran", lambda ctx: (order == ["a", "b", "c"], str(order)))
        ],
    )

    outcome = executor.run(plan, make_target(sqlite_url), confirmed=True)

    assert outcome.ok and order == ["a", "b", "c"]
    entry = journal.operation(outcome.operation_id)
    assert entry["status"] == "succeeded" and entry["kind"] == "test.run"
    assert [s["name"] for s in entry["steps"]] == ["a", "b", "c"]
    assert all(s["status"] == "succeeded" for s in entry["steps"])
    assert entry["user"] and entry["host"] and entry["duration"] >= 0
    assert entry["result"]["postconditions"][0]["ok"] is True
    kinds = [e.kind for e in seen]
    assert kinds[0] == ev.OPERATION_STARTED and kinds[-1] == ev.OPERATION_SUCCEEDED
    assert kinds.count(ev.STEP_FINISHED) == 3
    assert journal.lock_holder("t") is None


def test_an_unconfirmed_plan_is_refused_before_anything_runs(
    journal: Journal, sqlite_url: str
) -> None:
    executor, _ = recording(journal)
    ran = []
    plan = Plan("test.run", "t", "x", steps=[step("a", ran.append)])
    with pytest.raises(NotConfirmed) as refused:
        executor.run(plan, make_target(sqlite_url), confirmed=False)
    assert refused.value.exit_code == 3
    assert ran == [] and journal.operations() == []


def test_a_failing_step_stops_the_plan_and_records_what_ran_and_what_did_not(
    journal: Journal, sqlite_url: str
) -> None:
    executor, seen = recording(journal)

    def boom(ctx: Context) -> None:
        raise RuntimeError("disk on fire")

    plan = Plan(
        "test.run",
        "t",
        "fails in the middle",
        steps=[step("a"), step("b", boom), step("c")],
        explain_failure=lambda ctx, s, exc: {"now_at": "after a"},
    )
    outcome = executor.run(plan, make_target(sqlite_url), confirmed=True)

    assert outcome.status == "failed" and outcome.failed_step == "b"
    assert "disk on fire" in outcome.error
    assert outcome.report == {"now_at": "after a"}
    entry = journal.operation(outcome.operation_id)
    assert [(s["name"], s["status"]) for s in entry["steps"]] == [
        ("a", "succeeded"),
        ("b", "failed"),
        ("c", "skipped"),
    ]
    assert "disk on fire" in entry["steps"][1]["error"]
    assert seen[-1].kind == ev.OPERATION_FAILED
    assert str(seen[-1].severity) == "critical"


def test_cancel_stops_between_steps(journal: Journal, sqlite_url: str) -> None:
    executor, _ = recording(journal)
    cancel = threading.Event()
    plan = Plan(
        "test.run",
        "t",
        "cancelled",
        steps=[step("a", lambda ctx: cancel.set()), step("b"), step("c")],
    )
    outcome = executor.run(plan, make_target(sqlite_url), confirmed=True, cancel=cancel)
    assert outcome.status == "cancelled"
    entry = journal.operation(outcome.operation_id)
    assert [(s["name"], s["status"]) for s in entry["steps"]] == [
        ("a", "succeeded"),
        ("b", "skipped"),
        ("c", "skipped"),
    ]


def test_a_failed_postcondition_fails_the_operation(
    journal: Journal, sqlite_url: str
) -> None:
    executor, _ = recording(journal)
    plan = Plan(
        "test.run",
        "t",
        "x",
        steps=[step("a")],
        postconditions=[
            Postcondition("revision is abc", lambda ctx: (False, "database is at def"))
        ],
    )
    outcome = executor.run(plan, make_target(sqlite_url), confirmed=True)
    assert outcome.status == "failed"
    assert "revision is abc" in outcome.error and "def" in outcome.error


def test_safety_backup_runs_first_when_destructive_and_declining_is_recorded(
    journal: Journal, sqlite_url: str
) -> None:
    executor, _ = recording(journal)
    order: list[str] = []

    def plan() -> Plan:
        return Plan(
            "test.run",
            "t",
            "destroys",
            steps=[step("drop", lambda ctx: order.append("drop"), destructive=True)],
            safety_backup=step("safety", lambda ctx: order.append("safety")),
        )

    first = executor.run(plan(), make_target(sqlite_url), confirmed=True)
    assert order == ["safety", "drop"]
    declined = executor.run(
        plan(), make_target(sqlite_url), confirmed=True, safety_backup=False
    )
    assert order == ["safety", "drop", "drop"]
    assert journal.operation(first.operation_id)["options"]["safety_backup"] is True
    options = journal.operation(declined.operation_id)["options"]
    assert options["safety_backup_declined"] is True


def test_a_second_operation_on_the_same_target_is_refused_naming_the_holder(
    journal: Journal, sqlite_url: str
) -> None:
    executor, _ = recording(journal)
    inside = threading.Event()
    release = threading.Event()

    def hold(ctx: Context) -> None:
        inside.set()
        release.wait(30)

    target = make_target(sqlite_url)
    first = threading.Thread(
        target=executor.run,
        args=(Plan("test.hold", "t", "holds", steps=[step("hold", hold)]), target),
        kwargs={"confirmed": True},
    )
    first.start()
    try:
        assert inside.wait(30)
        with pytest.raises(LockHeld) as refused:
            executor.run(
                Plan("test.run", "t", "second", steps=[step("a")]),
                target,
                confirmed=True,
            )
    finally:
        release.set()
        first.join()
    assert refused.value.exit_code == 3
    assert refused.value.holder["pid"] == os.getpid()
    assert refused.value.holder["kind"] == "test.hold"
    assert "since" in str(refused.value)
    assert len(journal.operations()) == 1


HOLDER = textwrap.dedent("""
    import sys, time
    from core.events import Bus
    from core.executor import Executor
    from core.journal import Journal
    from core.plans import Plan, Step
    from core.state import Store
    from tests.conftest import make_target

    journal = Journal(Store(sys.argv[1]))
    def hang(ctx):
        print("inside", flush=True)
        time.sleep(600)
    Executor(journal, Bus()).run(
        Plan("test.hold", "t", "holds", steps=[Step("first", "", run=lambda c: None),
                                            Step("hang", "", run=hang)]),
        make_target(sys.argv[2]), confirmed=True)
""")


def start_holder(state_url: str, sqlite_url: str) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, state_url, sqlite_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "inside"
    return holder


def test_a_crash_mid_way_leaves_a_journal_entry_that_says_what_ran(
    journal: Journal, state_url: str, sqlite_url: str
) -> None:
    holder = start_holder(state_url, sqlite_url)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    [entry] = journal.operations()
    assert entry["status"] == INTERRUPTED
    detail = journal.operation(entry["id"])
    assert [(s["name"], s["status"]) for s in detail["steps"]] == [
        ("first", "succeeded"),
        ("hang", "running"),
    ]


def test_a_lock_left_by_a_dead_process_is_stale_and_breaks_only_when_asked(
    journal: Journal, state_url: str, sqlite_url: str
) -> None:
    holder = start_holder(state_url, sqlite_url)
    live = journal.lock_holder("t")
    assert live is not None and live["stale"] is False and live["pid"] == holder.pid
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    executor, _ = recording(journal)
    plan = Plan("test.run", "t", "after the crash", steps=[step("a")])
    with pytest.raises(LockHeld) as refused:
        executor.run(plan, make_target(sqlite_url), confirmed=True)
    assert refused.value.stale and "--break-lock" in str(refused.value)

    outcome = executor.run(
        plan, make_target(sqlite_url), confirmed=True, break_lock=True
    )
    assert outcome.ok
    broken = journal.events(kinds=("lock.broken",))
    assert len(broken) == 1 and str(holder.pid) in broken[0]["message"]


def test_two_dbr_processes_one_is_refused_with_exit_3_and_the_holder(
    tmp_path: Path, state_url: str, sqlite_url: str
) -> None:
    config = tmp_path / "dbr.toml"
    config.write_text(
        f'[state]\nurl = "{state_url}"\n\n[targets.t]\nurl = "{sqlite_url}"\n'
    )
    holder = start_holder(state_url, sqlite_url)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "console.cli",
                "--config",
                str(config),
                "locks",
                "--break",
                "t",
                "--yes",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 3
    assert "target 't' is locked" in result.stderr
    assert f"pid {holder.pid}" in result.stderr
    time.sleep(0)  # the lock is released by nobody: the holder was killed


def test_the_state_store_can_live_in_postgresql(pg_url: str, sqlite_url: str) -> None:
    journal = Journal(Store(pg_url))
    executor, _ = recording(journal)
    outcome = executor.run(
        Plan("test.run", "t", "on a shared store", steps=[step("a"), step("b")]),
        make_target(sqlite_url),
        confirmed=True,
    )
    assert outcome.ok
    again = Journal(Store(pg_url))  # a second bastion opening the same store
    [entry] = again.operations("t")
    assert entry["id"] == outcome.operation_id and entry["status"] == "succeeded"
    assert [s["name"] for s in again.operation(entry["id"])["steps"]] == ["a", "b"]
    journal.store.close()
    again.store.close()


def test_processes_opening_a_new_state_store_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    # Every process imports first, then all open the store at the same moment.
    script = (
        "import sys, time\nfrom core.state import Store\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\nStore(sys.argv[1])\n"
    )
    start = str(time.time() + 3)
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, start],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in openers]
    assert [p.returncode for p in openers] == [0] * 6, errors
    assert Journal(Store(url)).operations() == []


def test_an_interrupted_step_announces_the_end_of_its_operation(
    journal: Journal, sqlite_url: str
) -> None:
    executor, seen = recording(journal)

    def interrupted(ctx: Context) -> None:
        raise KeyboardInterrupt

    plan = Plan("test.stop", "t", "stopped", steps=[step("a"), step("b", interrupted)])
    with pytest.raises(KeyboardInterrupt):
        executor.run(plan, make_target(sqlite_url), confirmed=True)

    # A webhook that heard "started" must hear how it ended, before dbr exits.
    last = seen[-1]
    assert last.kind == ev.OPERATION_FAILED and last.severity == ev.Severity.CRITICAL
    assert last.message == "stopped failed: interrupted during b"
    entry = journal.operation(last.operation_id)
    assert entry["status"] == "failed" and journal.lock_holder("t") is None
