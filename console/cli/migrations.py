"""`dbr migrations history|current|plan|downgrade|upgrade|diff|test`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from console.cli.common import (
    add_command,
    add_run_options,
    emit_json,
    execute,
    render_plan,
    report,
    table,
    when,
    workspace,
)
from core.errors import EXIT_FAILED, EXIT_OK, ConfigError

# The engines (Alembic among them) are imported by the handlers that use them:
# building the parser for every `dbr` command should not pay for them.
if TYPE_CHECKING:
    from core.migrations.history import Current, Revision
    from core.targets import Target
    from core.workspace import Workspace

TARGET_HELP = "the target (may be left out when dbr.toml has only one)"
PLURALS = {
    "drop_index": ("index", "indexes"),
    "drop_constraint": ("constraint", "constraints"),
    "raw_sql": ("raw SQL statement", "raw SQL statements"),
    "uses_connection": ("use of the connection", "uses of the connection"),
    "sql": ("SQL statement", "SQL statements"),
}


def register(commands: Any) -> None:
    group = commands.add_parser(
        "migrations",
        help="Alembic history, downgrade and "
        "upgrade plans, schema diffs, round-trip tests",
    )
    verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True)

    history = add_command(
        verbs,
        "history",
        cmd_history,
        "every revision, what is applied, what each downgrade does",
    )
    history.add_argument("target", nargs="?", help=TARGET_HELP)
    current = add_command(
        verbs,
        "current",
        cmd_current,
        "the database's heads and any version-table problem",
    )
    current.add_argument("target", nargs="?", help=TARGET_HELP)

    plan = add_command(
        verbs, "plan", cmd_plan, "preview a downgrade (or --upgrade): steps, SQL, risks"
    )
    plan.add_argument("target", nargs="?", help=TARGET_HELP)
    _spec(plan, required=True)
    plan.add_argument(
        "--upgrade", action="store_true", help="plan an upgrade instead of a downgrade"
    )

    for verb, text in (
        ("downgrade", "downgrade to a revision, after a preview"),
        ("upgrade", "upgrade to a revision (default: heads)"),
    ):
        run = add_command(verbs, verb, cmd_run, text)
        run.add_argument("target", nargs="?", help=TARGET_HELP)
        _spec(run, required=verb == "downgrade")
        run.add_argument(
            "--yes",
            action="store_true",
            help="confirm without asking (needed when not interactive)",
        )
        add_run_options(run, safety_backup=True)
        if verb == "downgrade":
            run.add_argument(
                "--trial",
                action="store_true",
                help="run the whole downgrade in one transaction and "
                "roll it back (PostgreSQL, SQLite)",
            )

    diff = add_command(
        verbs,
        "diff",
        cmd_diff,
        "compare two schema snapshots, or a snapshot with the live schema",
    )
    diff.add_argument("target", nargs="?", help=TARGET_HELP)
    diff.add_argument(
        "snapshots",
        nargs="*",
        type=int,
        metavar="SNAPSHOT_ID",
        help="none: the newest snapshot against live; one: it against "
        "live; two: the first against the second",
    )
    diff.add_argument("--list", action="store_true", help="list the snapshots")

    test = add_command(
        verbs,
        "test",
        cmd_test,
        "round-trip every revision in a "
        "scratch database: upgrade, downgrade, compare, upgrade",
    )
    test.add_argument("target", nargs="?", help=TARGET_HELP)
    test.add_argument(
        "--scratch",
        required=True,
        metavar="URL",
        help="a database dbr may create and drop (it must not exist)",
    )
    test.add_argument(
        "--copy-schema",
        action="store_true",
        help="start from a copy of the target's schema (no rows) at "
        "its heads and walk down: for projects whose first revision "
        "expects existing tables",
    )


def _target(ws: Workspace, args: argparse.Namespace) -> Target:
    """The named target, or the only one dbr.toml defines."""
    if args.target:
        return ws.target(args.target)
    names = sorted(ws.settings.targets)
    if len(names) == 1:
        return ws.target(names[0])
    raise ConfigError(
        "which target?",
        cause=f"{ws.settings.where()} defines "
        f"{len(names)}: {', '.join(names) or 'none'}",
        hint="name one: dbr migrations VERB TARGET",
    )


def _spec(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--to",
        dest="spec",
        required=required,
        default=None if required else "heads",
        metavar="SPEC",
        help="revision (or unique prefix), base, heads, -N, BRANCH@-N or BRANCH@REV",
    )


def cmd_history(args: argparse.Namespace) -> int:
    from core import migrations

    ws = workspace(args)
    result = migrations.history(_target(ws, args))
    if args.json:
        emit_json([r.to_dict() for r in result.revisions])
        return EXIT_OK
    _print_current(result.current)
    print("  (> the database is here, * applied)\n")
    at = set(result.current.heads)
    table(
        [
            (
                ">" if r.revision in at else "*" if r.applied else "",
                r.revision,
                ", ".join(r.down_revisions) or "-",
                _flags(r),
                _downgrade_text(r),
                r.message,
            )
            for r in result.revisions
        ],
        ("", "revision", "down", "flags", "downgrade", "message"),
    )
    return EXIT_OK


def cmd_current(args: argparse.Namespace) -> int:
    from core import migrations

    ws = workspace(args)
    result = migrations.current(_target(ws, args))
    if args.json:
        emit_json(result.to_dict())
    else:
        _print_current(result)
    return EXIT_OK if not result.problems else EXIT_FAILED


def cmd_plan(args: argparse.Namespace) -> int:
    from core import migrations

    ws = workspace(args)
    direction = "upgrade" if args.upgrade else "downgrade"
    plan = migrations.plan(
        _target(ws, args), args.spec, direction=direction, journal=ws.journal
    )
    if args.json:
        emit_json(plan.to_dict())
    else:
        render_plan(plan)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from core import migrations

    ws = workspace(args)
    target = _target(ws, args)
    if getattr(args, "trial", False):
        plan = migrations.trial_plan(target, args.spec, journal=ws.journal)
    else:
        plan = migrations.plan(
            target, args.spec, direction=args.verb, journal=ws.journal
        )
    if not plan.steps:
        message = f"{target.name} is already at {args.spec}: nothing to do"
        if args.json:
            emit_json(
                {
                    "target": target.name,
                    "status": "nothing to do",
                    "message": message,
                    "plan": plan.to_dict(),
                }
            )
        else:
            print(message)
        return EXIT_OK
    outcome = execute(
        ws, plan, target, args, spec=args.spec, trial=getattr(args, "trial", False)
    )
    return report(outcome, args)


def cmd_diff(args: argparse.Namespace) -> int:
    from core import snapshots

    ws = workspace(args)
    target = _target(ws, args)
    if args.list:
        found = snapshots.snapshots(ws.store, target.name, limit=50)
        if args.json:
            emit_json(
                [
                    {
                        k: v
                        for k, v in s.to_dict().items()
                        if k not in ("tables", "types")
                    }
                    | {"tables": len(s.tables)}
                    for s in found
                ]
            )
        elif not found:
            print(
                f"no schema snapshots of {target.name} yet; every migration run "
                "records one before and after"
            )
        else:
            table(
                [
                    (
                        s.id,
                        when(s.at),
                        s.label or "-",
                        s.operation_id or "-",
                        ", ".join(s.revision or []) or "-",
                        len(s.tables),
                    )
                    for s in found
                ],
                ("id", "taken", "label", "operation", "revision", "tables"),
            )
        return EXIT_OK
    if len(args.snapshots) > 2:
        raise ConfigError(
            "diff compares at most two snapshots",
            hint="dbr migrations diff TARGET [FROM [TO]]",
        )
    if args.snapshots:
        before = snapshots.load(ws.store, args.snapshots[0], target.name)
    else:
        newest = snapshots.snapshots(ws.store, target.name, limit=1)
        if not newest:
            raise ConfigError(
                f"no schema snapshots of {target.name} yet",
                hint="they are recorded by every migration run",
            )
        before = newest[0]
    after = (
        snapshots.load(ws.store, args.snapshots[1], target.name)
        if len(args.snapshots) == 2
        else snapshots.take(target)
    )
    result = snapshots.diff(before, after)
    names = (f"snapshot {before.id}", f"snapshot {after.id}" if after.id else "live")
    if args.json:
        emit_json(
            {
                "target": target.name,
                "from": names[0],
                "to": names[1],
                **result.to_dict(),
            }
        )
        return EXIT_OK
    print(
        f"{target.name}: {names[0]} ({before.label or '-'}, {when(before.at)}) "
        f"-> {names[1]}"
    )
    for line in result.lines() or ["no difference"]:
        print(f"  {line}")
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from core import migrations

    ws = workspace(args)
    target = _target(ws, args)

    def progress(done: int, total: int, message: str) -> None:
        if not args.json:
            print(f"[{done}/{total}] {message}", file=sys.stderr, flush=True)

    result = migrations.roundtrip(
        target,
        args.scratch,
        progress=progress,
        copy_schema=args.copy_schema,
        journal=ws.journal,
    )
    if args.json:
        emit_json(result.to_dict())
        return EXIT_OK if result.ok else EXIT_FAILED
    table(
        [
            (
                r.revision,
                r.status.upper() if r.status != "ok" else "ok",
                r.message,
                r.detail,
            )
            for r in result.revisions
        ],
        ("revision", "result", "message", "detail"),
    )
    for line in result.summary_lines():
        print(line)
    return EXIT_OK if result.ok else EXIT_FAILED


def _print_current(current: Current) -> None:
    heads = ", ".join(current.heads) or "base (no revision applied)"
    state = (
        "at head" if current.at_head else "heads: " + ", ".join(current.script_heads)
    )
    print(f"{current.target}: database at {heads} ({state})")
    for problem in current.problems:
        print(f"  PROBLEM: {problem.message}")
        print(f"    what to do: {problem.hint}")


def _flags(rev: Revision) -> str:
    flags = [
        name
        for name, on in (
            ("head", rev.is_head),
            ("base", rev.is_base),
            ("merge", rev.is_merge),
            ("branch point", rev.is_branch_point),
        )
        if on
    ]
    flags += [f"@{label}" for label in rev.branch_labels]
    if rev.depends_on:
        flags.append("depends on " + ", ".join(rev.depends_on))
    return ", ".join(flags) or "-"


def _downgrade_text(rev: Revision) -> str:
    analysis = rev.downgrade
    if not analysis.found:
        return f"UNREADABLE ({analysis.problem})"
    if analysis.raises:
        return "RAISES (irreversible)"
    if analysis.empty:
        return "nothing (merge)" if rev.is_merge else "EMPTY (irreversible)"
    names: dict[str, list[str]] = {}
    for op in analysis.operations:
        thing = ".".join(x for x in (op.table, op.column) if x) or op.name or "?"
        names.setdefault(op.kind, []).append(thing)
    parts = []
    for kind, things in names.items():
        count = len(things)
        if kind in PLURALS:
            parts.append(f"{count} {PLURALS[kind][count > 1]}")
        else:
            parts.append(f"{kind.replace('_', ' ')} {', '.join(things)}")
    parts.sort(key=lambda p: p[0].isdigit())
    text = "; ".join(parts) or "no schema change"
    text = ("DESTROYS: " if analysis.destructive else "") + text
    return text if len(text) <= 60 else text[:59] + "…"
