"""`dbr health`, `dbr rollback plan|run`, `dbr watch`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from console.cli.common import (
    add_command,
    add_run_options,
    emit_json,
    execute,
    render_plan,
    report,
    table,
    workspace,
)
from core.errors import EXIT_FAILED, EXIT_OK, ConfigError
from core.secrets import redact

# The engines are imported by the handlers that use them: building the parser
# for every `dbr` command should not pay for them.
if TYPE_CHECKING:
    from core.health import Sample


def register(commands: Any) -> None:
    check = add_command(
        commands,
        "health",
        cmd_health,
        "measure a target's health once (exit 1 when not healthy)",
    )
    check.add_argument("target")
    check.add_argument(
        "--watch",
        action="store_true",
        help="keep sampling at the target's interval until Ctrl-C",
    )

    verbs = commands.add_parser("rollback", help="plan or run a rollback strategy")
    sub = verbs.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, handler, text in (
        ("plan", cmd_rollback_plan, "show the plan a strategy makes"),
        ("run", cmd_rollback_run, "run a strategy, then measure recovery"),
    ):
        parser = add_command(sub, name, handler, text)
        parser.add_argument("target")
        parser.add_argument(
            "--strategy",
            required=True,
            metavar="S",
            help="notify, downgrade:N, downgrade:REV, "
            "restore:latest-verified, restore:latest or restore:ID",
        )
        if name == "run":
            parser.add_argument(
                "--yes", action="store_true", help="confirm without a prompt"
            )
            add_run_options(parser, safety_backup=True)

    watch = add_command(
        commands,
        "watch",
        cmd_watch,
        "monitor targets, alert, and act on triggers (Ctrl-C stops)",
    )
    watch.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="the targets to watch (default: all)",
    )
    watch.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics on 127.0.0.1:N",
    )
    watch.add_argument(
        "--once",
        action="store_true",
        help="one round of samples and triggers, then exit",
    )
    watch.add_argument(
        "--interval",
        type=float,
        metavar="S",
        help="seconds between samples (default: each target's own)",
    )


def cmd_health(args: argparse.Namespace) -> int:
    from core import health
    from core.health import Monitor

    ws = workspace(args)
    target = ws.target(args.target)
    if not args.watch:
        sample = health.sample(ws, target)
        if args.json:
            result = sample.to_dict()
            result["triggers"] = [
                s.to_dict() for s in health.trigger_states(ws, target)
            ]
            emit_json(result)
        else:
            _print_sample(sample)
            for state in health.trigger_states(ws, target):
                print(
                    f"trigger {state.trigger.name!r} ({state.trigger.mode}, "
                    f"{state.trigger.strategy}): {state.description}"
                )
        return EXIT_OK if sample.healthy else EXIT_FAILED
    monitor = Monitor(ws.store, ws.bus)
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            while not stop.is_set():
                sample = health.sample(ws, target, monitor=monitor)
                if args.json:
                    print(json.dumps(sample.to_dict(), default=str), flush=True)
                else:
                    print(f"{sample.at:%H:%M:%S} {redact(sample.summary)}", flush=True)
                stop.wait(target.config.health.interval)
        finally:
            monitor.close()
    return EXIT_OK


def _print_sample(sample: Sample) -> None:
    if sample.conclusive:
        state = "healthy" if sample.healthy else "UNHEALTHY"
        print(
            f"{sample.target}: score {sample.score:g} of 100, threshold "
            f"{sample.threshold:g}: {state}"
        )
    else:
        print(f"{sample.target}: INCONCLUSIVE, the checks could not run")
    table(
        [
            (
                c.name,
                "ok" if c.ok else c.status.upper(),
                _value(c.value),
                f"{c.weight:g}" + (" required" if c.required else ""),
                c.detail or c.error or "",
            )
            for c in sample.checks
        ],
        ("check", "state", "value", "weight", "detail"),
    )
    if sample.lowered_by or not sample.conclusive:
        print("\nWhy the score is not 100:")
        for line in sample.explanation:
            print(f"  {redact(line)}")


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def cmd_rollback_plan(args: argparse.Namespace) -> int:
    from core import rollback

    ws = workspace(args)
    plan = rollback.plan_strategy(ws, ws.target(args.target), args.strategy)
    if args.json:
        emit_json(plan.to_dict())
    else:
        render_plan(plan)
        print(
            f"\nto run it: dbr rollback run {args.target} --strategy {args.strategy}"
            " --yes"
        )
    return EXIT_OK


def cmd_rollback_run(args: argparse.Namespace) -> int:
    from core import rollback

    ws = workspace(args)
    target = ws.target(args.target)
    plan = rollback.plan_strategy(ws, target, args.strategy)
    outcome = execute(
        ws,
        plan,
        target,
        args,
        strategy=args.strategy,
        trigger=None,
        triggered_at=None,
    )
    recovery = outcome.results.get("recovery")
    if recovery and not args.json:
        print(
            f"health after the rollback: {recovery['verdict']} "
            f"({recovery['samples']} samples, {recovery['seconds']:.0f} s)"
        )
    return report(outcome, args)


def cmd_watch(args: argparse.Namespace) -> int:
    from core.watch import Watcher

    ws = workspace(args)
    if not ws.settings.targets:
        raise ConfigError("no targets to watch", hint="add [targets.NAME] to dbr.toml")
    for name in args.targets:
        ws.settings.target(name)  # names a missing target before anything starts
    if args.interval is not None and args.interval <= 0:
        raise ConfigError("--interval must be a positive number of seconds")

    def show(sample: Sample) -> None:
        line = (
            json.dumps(sample.to_dict(), default=str)
            if args.json
            else f"{sample.at:%H:%M:%S} {sample.target}: {sample.summary}"
        )
        try:
            print(redact(line), flush=True)
        except OSError:
            pass  # the terminal went away; the watch carries on

    watcher = Watcher(
        ws,
        args.targets or None,
        interval=args.interval,
        on_sample=None if args.once else show,
    )
    if args.once:
        samples = watcher.run_once()
        watcher.close()
        if args.json:
            emit_json([s.to_dict() for s in samples])
        else:
            table(
                [
                    (
                        s.target,
                        "-" if s.score is None else f"{s.score:g}",
                        f"{s.threshold:g}",
                        "healthy"
                        if s.healthy
                        else "UNHEALTHY"
                        if s.conclusive
                        else "INCONCLUSIVE",
                        "; ".join(s.explanation[:2]),
                    )
                    for s in samples
                ],
                ("target", "score", "threshold", "state", "why"),
            )
        return EXIT_OK if all(s.healthy for s in samples) else EXIT_FAILED
    stop_metrics = None
    if args.metrics_port is not None:
        try:
            stop_metrics = watcher.serve_metrics(args.metrics_port)
        except OSError as exc:
            watcher.close()
            raise ConfigError(
                f"cannot serve metrics on 127.0.0.1:{args.metrics_port}",
                cause=exc.strerror or str(exc),
                hint="choose a free port",
            ) from None
        print(
            f"dbr: metrics on http://127.0.0.1:{args.metrics_port}/metrics",
            file=sys.stderr,
            flush=True,
        )
    stop = threading.Event()
    print(
        f"dbr: watching {len(watcher.watched)} target(s); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    with _stop_on_signals(stop):
        try:
            watcher.run(stop)
        finally:
            if stop_metrics is not None:
                stop_metrics()
    print("dbr: watch stopped", file=sys.stderr, flush=True)
    return EXIT_OK


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set stop (twice: abort now); SIGHUP is ignored.

    A rollback that a trigger started ends between its steps on the first signal;
    the watch waits for it, so a second signal is the way out of a long step.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        try:
            print("dbr: stopping (again to abort now)", file=sys.stderr, flush=True)
        except OSError:
            pass

    previous = {
        signum: signal.signal(signum, handler)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
