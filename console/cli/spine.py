"""`dbr targets`, `config check`, `log`, `locks`, `metrics`, `demo init`."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from console.cli.common import (
    add_command,
    emit_json,
    seconds,
    table,
    when,
    workspace,
)
from core import metrics
from core.config import TargetConfig, load
from core.errors import EXIT_OK, EXIT_USAGE, ConfigError, NotConfirmed
from core.secrets import display_url
from core.targets import Target


def register(commands: Any) -> None:
    add_command(commands, "targets", cmd_targets, "list the databases dbr manages")

    config = commands.add_parser("config", help="check dbr.toml")
    config_verbs = config.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_command(
        config_verbs,
        "check",
        cmd_config_check,
        "validate dbr.toml without touching any database",
    )

    log = add_command(commands, "log", cmd_log, "the journal: every operation")
    log.add_argument(
        "words",
        nargs="*",
        metavar="TARGET | show OP_ID",
        help="only this target; or `show OP_ID` for one operation",
    )
    log.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    log.add_argument("--kind", help="only this kind, e.g. 'backup.*'")

    locks = add_command(
        commands,
        "locks",
        cmd_locks,
        "operation locks held now; --break TARGET frees a stale one",
    )
    locks.add_argument(
        "--break",
        dest="break_target",
        metavar="TARGET",
        help="break TARGET's lock if its process is gone",
    )
    locks.add_argument("--yes", action="store_true", help="confirm --break")

    add_command(
        commands,
        "metrics",
        cmd_metrics,
        "operations by kind and outcome, success rate, durations",
    )

    demo = commands.add_parser("demo", help="the demo workspace")
    demo_verbs = demo.add_subparsers(dest="verb", metavar="VERB", required=True)
    init = add_command(
        demo_verbs,
        "init",
        cmd_demo_init,
        "write a ready demo workspace (SQLite shop, Alembic, dbr.toml)",
    )
    init.add_argument("directory", type=Path)
    init.add_argument(
        "--force", action="store_true", help="write into a folder that is not empty"
    )


def cmd_targets(args: argparse.Namespace) -> int:
    settings = load(args.config)
    rows = [
        {
            "name": t.name,
            "dialect": t.dialect,
            "url": display_url(t.url),
            "alembic": str(t.alembic) if t.alembic else None,
            "backup_dir": str(t.backup_dir),
            "critical_tables": list(t.critical_tables),
        }
        for t in settings.targets.values()
    ]
    if args.json:
        emit_json(rows)
    elif not rows:
        print(f"no targets in {settings.where()}; add [targets.NAME] to dbr.toml")
    else:
        table(
            [(r["name"], r["dialect"], r["url"], r["alembic"] or "-") for r in rows],
            ("target", "dialect", "url", "alembic"),
        )
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = load(args.config)
    problems = [p for t in settings.targets.values() for p in _target_problems(t)]
    result = {
        "config": str(settings.path) if settings.path else None,
        "ok": not problems,
        "problems": problems,
        "targets": sorted(settings.targets),
        "sinks": len(settings.sinks),
        "state": display_url(settings.state_url),
    }
    if args.json:
        emit_json(result)
    elif problems:
        print(f"{settings.where()}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
    else:
        print(
            f"{settings.where()}: OK, {len(settings.targets)} target(s) "
            f"({', '.join(result['targets']) or 'none'}), {len(settings.sinks)} "
            f"alert sink(s), state store {result['state']}"
        )
    return EXIT_USAGE if problems else EXIT_OK


def _target_problems(config: TargetConfig) -> list[str]:
    """What the loader cannot see alone: files that are missing, names that are not."""
    from core.health.checks import Prober

    where = f"targets.{config.name}"
    problems = []
    if config.alembic is not None and not config.alembic.exists():
        problems.append(f"{where}.alembic: {config.alembic} does not exist")
    every = replace(config, health=replace(config.health, disable=()))
    known = set(Prober(Target(every)).names())
    for name in config.health.disable:
        if name not in known:
            problems.append(
                f"{where}.health.disable: no check is named {name!r} "
                f"(known: {', '.join(sorted(known))})"
            )
    for index, trigger in enumerate(config.triggers):
        for name in trigger.checks_failing:
            if name not in known or name in config.health.disable:
                problems.append(
                    f"{where}.triggers[{index}].checks_failing: "
                    f"{name!r} is not a check this target runs"
                )
    return problems


def cmd_log(args: argparse.Namespace) -> int:
    words = args.words
    if words[:1] == ["show"]:
        if len(words) != 2:
            raise ConfigError(
                "usage: dbr log show OP_ID", hint="see `dbr log` for the ids"
            )
        return log_show(args, words[1])
    if len(words) > 1:
        raise ConfigError(
            f"dbr log takes one target, not {len(words)}",
            hint="dbr log [TARGET] or dbr log show OP_ID",
        )
    args.target = words[0] if words else None
    ws = workspace(args)
    entries = ws.journal.operations(args.target, limit=args.limit, kind=args.kind)
    if args.json:
        emit_json(entries)
        return EXIT_OK
    if not entries:
        print("the journal is empty" + (f" for {args.target}" if args.target else ""))
        return EXIT_OK
    table(
        [
            (
                e["id"],
                when(e["started_at"]),
                e["target"],
                e["kind"],
                e["status"],
                seconds(e["duration"]),
                e["user"],
                e["title"],
            )
            for e in entries
        ],
        ("id", "started", "target", "kind", "status", "took", "user", "what"),
    )
    return EXIT_OK


def log_show(args: argparse.Namespace, operation_id: str) -> int:
    ws = workspace(args)
    entry = ws.journal.operation(operation_id)
    if args.json:
        emit_json(entry)
        return EXIT_OK
    print(f"operation {entry['id']}: {entry['title']}")
    for key in ("kind", "target", "status", "started_at", "finished_at"):
        print(f"  {key.replace('_', ' ')}: {entry[key] or '-'}")
    print(f"  took: {seconds(entry['duration'])}")
    print(
        f"  by: {entry['user']}@{entry['host']}"
        + (f" from {entry['ssh_client']}" if entry["ssh_client"] else "")
        + f" (pid {entry['pid']})"
    )
    for key, value in (entry["options"] or {}).items():
        print(f"  option {key}: {value}")
    if entry["error"]:
        print(f"  error: {entry['error']}")
    print("\nSteps:")
    for step in entry["steps"]:
        print(
            f"  {step['position'] + 1}. [{step['status']}] {step['name']}"
            f" ({seconds(step['duration'])})"
            + (f": {step['error']}" if step["error"] else "")
        )
    planned = [s["name"] for s in (entry["plan"] or {}).get("steps", [])]
    ran = {s["name"] for s in entry["steps"]}
    missing = [name for name in planned if name not in ran]
    if missing:
        print("  not run: " + ", ".join(missing))
    shown = [e for e in entry["events"] if e["kind"] != "step.progress"]
    if shown:
        print("\nEvents:")
        for event in shown:
            print(f"  {event['at']} {event['severity']:<8} {event['message']}")
    return EXIT_OK


def cmd_locks(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.break_target:
        holder = ws.journal.lock_holder(args.break_target)
        if holder is None:
            print(f"{args.break_target} is not locked")
            return EXIT_OK
        if not args.yes:
            raise NotConfirmed(
                f"breaking the lock on {args.break_target}: not confirmed",
                hint="run again with --yes",
            )
        ws.journal.acquire_lock(
            args.break_target, "lock-break", "lock.break", break_stale=True
        )
        ws.journal.release_lock(args.break_target, "lock-break")
        print(f"lock on {args.break_target} broken")
        return EXIT_OK
    held = ws.journal.locks()
    if args.json:
        emit_json(held)
    elif not held:
        print("no locks held")
    else:
        table(
            [
                (
                    h["target"],
                    h["kind"],
                    f"{h['user']}@{h['host']}",
                    h["pid"],
                    when(h["acquired_at"]),
                    "STALE" if h["stale"] else "live",
                )
                for h in held
            ],
            ("target", "operation", "holder", "pid", "since", "state"),
        )
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace) -> int:
    ws = workspace(args)
    result = metrics.summary(ws.journal)
    if args.json:
        emit_json(result)
        return EXIT_OK
    rate = result["success_rate"]
    print(
        f"operations: {result['operations']}   success rate: "
        f"{'-' if rate is None else f'{rate:.0%}'}   mean: "
        f"{seconds(result['mean_duration'])}   p95: "
        f"{seconds(result['p95_duration'])}"
    )
    last = result["last_rollback"]
    print(
        "last rollback: "
        + (
            f"{last['kind']} on {last['target']}, {last['status']}, "
            f"{when(last['started_at'])}"
            if last
            else "none"
        )
    )
    recovery = result.get("trigger_to_recovery") or {}
    if recovery.get("count"):
        print(
            f"trigger to recovery: {recovery['count']} recovered, mean "
            f"{seconds(recovery['mean'])}, p95 {seconds(recovery['p95'])}, last "
            f"{seconds(recovery['last'])}"
        )
    else:
        print("trigger to recovery: no recovered rollback yet")
    if result["by_kind"]:
        table(
            [
                (
                    kind,
                    k["total"],
                    ", ".join(f"{s} {n}" for s, n in sorted(k["outcomes"].items())),
                    seconds(k["mean_duration"]),
                    seconds(k["p95_duration"]),
                )
                for kind, k in result["by_kind"].items()
            ],
            ("kind", "total", "outcomes", "mean", "p95"),
        )
    return EXIT_OK


def cmd_demo_init(args: argparse.Namespace) -> int:
    from core.demo import init_demo

    path = init_demo(args.directory, force=args.force)
    if args.json:
        emit_json({"config": str(path)})
    else:
        print(f"demo workspace ready: {path}")
        print(f"try: dbr --config {path} targets")
    return EXIT_OK
