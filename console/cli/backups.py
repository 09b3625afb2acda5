"""`dbr backups create|list|show|rescan|pin|unpin|verify|restore|prune|remove`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from console.cli.common import (
    add_command,
    add_run_options,
    cancelled_by_signals,
    emit_json,
    execute,
    report,
    seconds,
    size,
    table,
    when,
    workspace,
)
from core.errors import EXIT_FAILED, EXIT_OK, ConfigError, Refused
from core.events import STEP_PROGRESS, Event

# The backup engine is imported by the handlers that use it: building the parser
# for every `dbr` command should not pay for it.
if TYPE_CHECKING:
    from core.backups import Backup


def register(commands: Any) -> None:
    group = commands.add_parser(
        "backups",
        help="create, verify, restore, prune and remove backups",
        description="The backup catalog.",
    )
    verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True)

    create = add_command(verbs, "create", cmd_create, "back up a target now")
    create.add_argument("target")
    create.add_argument("--label", help="a note kept with the backup")
    create.add_argument(
        "--pin", action="store_true", help="pin it: pruning never removes it"
    )
    add_run_options(create)

    listing = add_command(verbs, "list", cmd_list, "backups, newest first")
    listing.add_argument("target", nargs="?")

    show = add_command(verbs, "show", cmd_show, "one backup and its manifest")
    show.add_argument("id")

    add_command(
        verbs,
        "rescan",
        cmd_rescan,
        "rebuild the catalog from the manifests in the backup folders "
        "(exit status 1 when one is damaged; the rest are listed)",
    )

    pin = add_command(verbs, "pin", cmd_pin, "keep a backup whatever retention says")
    pin.add_argument("id")
    pin.add_argument("--reason", help="why it is kept")
    unpin = add_command(verbs, "unpin", cmd_unpin, "let retention judge it again")
    unpin.add_argument("id")

    verify = add_command(
        verbs, "verify", cmd_verify, "checksum, decompress and read a backup in full"
    )
    verify.add_argument("id")
    verify.add_argument(
        "--deep",
        action="store_true",
        help="also restore it into a scratch database (dropped "
        "afterwards) and compare row counts",
    )

    restore = add_command(
        verbs,
        "restore",
        cmd_restore,
        "restore a backup after a safety backup of the present",
    )
    restore.add_argument("id")
    where = restore.add_mutually_exclusive_group()
    where.add_argument(
        "--target", help="restore into this target (default: the backup's own)"
    )
    where.add_argument(
        "--into", metavar="URL", help="restore into another database (its URL)"
    )
    restore.add_argument(
        "--in-place",
        action="store_true",
        help="PostgreSQL: restore inside the database in one transaction "
        "instead of beside it and swapped in (slower; ends no sessions)",
    )
    restore.add_argument("--yes", action="store_true", help="confirm the plan")
    add_run_options(restore, safety_backup=True)

    prune = add_command(
        verbs,
        "prune",
        cmd_prune,
        "remove the backups the retention policy no longer keeps",
    )
    prune.add_argument(
        "target", nargs="?", help="default: every target with a retention policy"
    )
    mode = prune.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="only show each backup's verdict and why"
    )
    mode.add_argument("--yes", action="store_true", help="confirm the plan")
    add_run_options(prune)

    remove = add_command(
        verbs,
        "remove",
        cmd_remove,
        "remove the backups you name, after a preview (each with its reason and the "
        "bytes freed); never a pinned backup, the newest verified one of its target, "
        "one a running operation uses, or the last complete one (exit status 3, "
        "nothing removed, when one named is such a backup)",
    )
    remove.add_argument(
        "ids",
        nargs="+",
        metavar="ID",
        help="backup ids or unique prefixes (`dbr backups list`)",
    )
    mode = remove.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="only show each backup's verdict and why"
    )
    mode.add_argument("--yes", action="store_true", help="confirm the plan")
    remove.add_argument(
        "--policy",
        action="store_true",
        help="also remove what the retention policy removes",
    )
    add_run_options(remove)


def _progress(args: argparse.Namespace, what: str) -> Callable[[float, Any], None]:
    """Throttled 'N MiB of M' on stderr when a person is watching."""
    last = [0.0]
    watching = sys.stderr.isatty()

    def show(done: float, total: Any = None) -> None:
        now = time.monotonic()
        if not watching or now - last[0] < 0.5:
            return
        last[0] = now
        of = f" of {size(int(total))}" if total else ""
        print(
            f"\r{what}: {size(int(done))}{of}   ", end="", file=sys.stderr, flush=True
        )

    return show


def _verified(backup: Backup) -> str:
    if backup.verify_ok is None:
        return "-"
    if not backup.verify_ok or backup.deep_verify_ok is False:
        return "FAILED"
    return "deep" if backup.deep_verify_ok else "yes"


def _rows(items: list[Backup]) -> list[tuple]:
    return [
        (
            b.id,
            b.target,
            when(b.created_at),
            size(b.size),
            _verified(b),
            "pinned" if b.pinned else "",
            b.label or "",
        )
        for b in items
    ]


HEADERS = ("id", "target", "created", "size", "verified", "pin", "label")


def cmd_create(args: argparse.Namespace) -> int:
    from core import backups

    ws = workspace(args)
    with cancelled_by_signals() as cancel:
        backup = backups.create_backup(
            ws,
            args.target,
            label=args.label,
            pin=args.pin,
            progress=_progress(args, "dumped"),
            break_lock=args.break_lock,
            cancel=cancel,
        )
    if args.json:
        emit_json(backup.to_dict())
        return EXIT_OK
    print(
        f"\rbackup {backup.id} of {backup.target}: {size(backup.size)} "
        f"({size(backup.raw_size)} before compression) in "
        f"{seconds(backup.manifest.get('duration'))}"
        + (", pinned" if backup.pinned else "")
    )
    print(f"  file: {backup.path}")
    print(f"  sha256: {backup.sha256}")
    for note in backup.manifest.get("notes") or []:
        print(f"  note: {note}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from core import backups

    ws = workspace(args)
    items = backups.list_backups(ws, args.target)
    if args.json:
        emit_json([b.to_dict() for b in items])
    elif not items:
        print(
            "no backups"
            + (f" of {args.target}" if args.target else "")
            + "; take one with `dbr backups create TARGET`"
        )
    else:
        table(_rows(items), HEADERS)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from core import backups

    backup = backups.get_backup(workspace(args), args.id)
    if args.json:
        emit_json(backup.to_dict())
        return EXIT_OK
    data = backup.to_dict()
    print(f"backup {backup.id} of {backup.target} ({backup.dialect})")
    print(
        f"  created: {data['created_at']} ({when(backup.created_at)}), took "
        f"{seconds(data['duration'])}"
    )
    print(f"  size: {size(backup.size)} ({size(backup.raw_size)} uncompressed)")
    print(f"  file: {backup.path}")
    print(f"  sha256: {backup.sha256}")
    print(f"  label: {backup.label or '-'}")
    print(f"  pinned: {'yes, ' + (backup.pin_reason or '') if backup.pinned else 'no'}")
    print(
        f"  verified: {_verified(backup)}"
        + (f" ({when(backup.verified_at)})" if backup.verified_at else "")
    )
    print(f"  revision: {', '.join(data['alembic_heads']) or 'none'}")
    print(
        f"  server: {data['server_version'] or '-'}; client: "
        f"{data['client_version'] or '-'}"
    )
    for note in data["notes"]:
        print(f"  note: {note}")
    if backup.tables:
        print()
        table(sorted(backup.tables.items()), ("table", "rows"))
    return EXIT_OK


def cmd_rescan(args: argparse.Namespace) -> int:
    from core import backups

    result = backups.rescan(workspace(args))
    if args.json:
        emit_json(result.to_dict())
    else:
        if result.backups:
            table(_rows(result.backups), HEADERS)
        print(
            f"\n{len(result.backups)} backups indexed"
            + (
                f", {len(result.removed_from_index)} no longer on disk removed "
                "from the index"
                if result.removed_from_index
                else ""
            )
        )
    problems = result.damaged + result.missing_files
    for problem in problems:
        print(f"dbr: damaged: {problem['path']}: {problem['problem']}", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK


def cmd_pin(args: argparse.Namespace) -> int:
    from core import backups

    backup = backups.pin(workspace(args), args.id, args.reason)
    if args.json:
        emit_json(backup.to_dict())
    else:
        print(f"backup {backup.id} pinned: pruning will keep it")
    return EXIT_OK


def cmd_unpin(args: argparse.Namespace) -> int:
    from core import backups

    backup = backups.unpin(workspace(args), args.id)
    if args.json:
        emit_json(backup.to_dict())
    else:
        print(f"backup {backup.id} unpinned: retention judges it again")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from core import backups

    ws = workspace(args)
    result = backups.verify_backup(
        ws, args.id, deep=args.deep, progress=_progress(args, "read")
    )
    if args.json:
        emit_json(result.to_dict())
    else:
        print(
            f"\rbackup {result.backup_id}: "
            f"{'SOUND' if result.ok else 'FAILED'}"
            f"{' (deep)' if result.deep else ''} in {seconds(result.duration)}"
        )
        for check in result.checks:
            print(
                f"  [{'ok' if check['ok'] else 'FAILED'}] {check['check']}: "
                f"{check['detail']}"
            )
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_restore(args: argparse.Namespace) -> int:
    from core import backups

    ws = workspace(args)
    plan = backups.plan_restore(
        ws, args.id, target=args.target, into=args.into, in_place=args.in_place
    )
    if not args.json:
        changes = plan.summary.get("tables") or []
        print("Tables (rows now -> in the backup):")
        table(
            [
                (
                    c["table"],
                    "-" if c["rows_now"] is None else c["rows_now"],
                    "-" if c["rows_in_backup"] is None else c["rows_in_backup"],
                )
                for c in changes
            ],
            ("table", "now", "backup"),
        )
        print()
    show = _progress(args, "restored")

    def on_progress(event: Event) -> None:
        if event.kind == STEP_PROGRESS and event.data.get("step") == "restore":
            show(event.data.get("done", 0), event.data.get("total"))

    unsubscribe = ws.bus.subscribe(on_progress)
    try:
        outcome = execute(ws, plan, backups.restore_target(ws, plan), args)
    finally:
        unsubscribe()
    return report(outcome, args)


def cmd_prune(args: argparse.Namespace) -> int:
    from core import backups

    ws = workspace(args)
    if args.target:
        names = [args.target]
    else:
        names = [n for n, t in ws.settings.targets.items() if t.retention]
        if not names:
            raise ConfigError(
                "no target has a retention policy",
                hint="add [targets.NAME.retention] to dbr.toml",
            )
    if args.dry_run:
        verdicts = [v for name in names for v in backups.retention_verdicts(ws, name)]
        if args.json:
            emit_json([v.to_dict() for v in verdicts])
            return EXIT_OK
        table(
            [
                (
                    v.id,
                    v.target,
                    when(v.created_at),
                    size(v.size),
                    v.action.upper() if v.action == "remove" else v.action,
                    "; ".join(v.reasons),
                )
                for v in verdicts
            ],
            ("id", "target", "created", "size", "verdict", "why"),
        )
        freed = sum(v.size for v in verdicts if v.action == "remove")
        print(
            f"\n{sum(v.action == 'remove' for v in verdicts)} to remove, "
            f"{size(freed)} freed (dry run: nothing removed)"
        )
        return EXIT_OK
    code = EXIT_OK
    for name in names:
        plan = backups.plan_prune(ws, name)
        outcome = execute(ws, plan, ws.target(name), args)
        code = max(code, report(outcome, args))
    return code


def _verdict_table(verdicts: list[dict[str, Any]]) -> None:
    table(
        [
            (
                v["id"],
                v["target"],
                when(_time(v["created_at"])),
                size(v["size"]),
                v["action"] if v["action"] == "keep" else v["action"].upper(),
                "; ".join(v["reasons"]),
            )
            for v in verdicts
        ],
        ("id", "target", "created", "size", "verdict", "why"),
    )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def cmd_remove(args: argparse.Namespace) -> int:
    from core import backups

    ws = workspace(args)
    plans = backups.plan_remove(ws, args.ids, policy=args.policy)
    verdicts = [v for plan in plans for v in plan.summary["detail"]["verdicts"]]
    refused = [v for v in verdicts if v["action"] == backups.REFUSED]
    freed = sum(v["frees"] for v in verdicts)
    if args.json and args.dry_run:
        emit_json(verdicts)
    elif not args.json:
        _verdict_table(verdicts)
        print(
            f"\n{sum(v['action'] == 'remove' for v in verdicts)} to remove, "
            f"{size(freed)} freed"
            + (f", {len(refused)} refused" if refused else "")
            + (" (dry run: nothing removed)" if args.dry_run else "")
            + "\n"
        )
    if args.dry_run:
        return EXIT_OK
    if refused:
        # Removing the rest would leave the operator guessing what happened.
        raise Refused(
            f"{len(refused)} of the backups named cannot be removed; nothing was "
            "removed",
            cause="; ".join(f"backup {v['id']}: {v['reasons'][0]}" for v in refused),
            hint="leave it out (a pinned one can be unpinned with `dbr backups "
            "unpin ID`), then run again",
        )
    code = EXIT_OK
    for plan in plans:
        outcome = execute(ws, plan, ws.target(plan.target), args)
        code = max(code, report(outcome, args))
    return code
