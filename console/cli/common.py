"""What every `dbr` verb shares: workspace, output, plan rendering, confirm, execute."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import humanize

from core import events as ev
from core.errors import EXIT_FAILED, EXIT_OK, DbrError, NotConfirmed
from core.events import Event
from core.secrets import RedactingFilter, redact, redact_value

log = logging.getLogger(__name__)

# Imported where used: every `dbr` command builds the whole parser, and most
# verbs need neither the executor nor a workspace.
if TYPE_CHECKING:
    from core.executor import Outcome
    from core.plans import Plan
    from core.targets import Target
    from core.workspace import Workspace

Handler = Callable[[argparse.Namespace], int]


def setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("dbr: %(levelname)s: %(message)s"))
    level = (logging.WARNING, logging.INFO)[min(verbosity, 1)]
    if verbosity > 1:
        level = logging.DEBUG
    logging.basicConfig(level=level, handlers=[handler], force=True)


def fail_message(exc: DbrError) -> str:
    lines = [f"dbr: error: {redact(exc.title)}"]
    if exc.cause:
        lines.append(f"  cause: {redact(exc.cause)}")
    if exc.hint:
        lines.append(f"  what to do: {redact(exc.hint)}")
    return "\n".join(lines)


def add_command(
    commands: Any, name: str, handler: Handler, help: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A verb whose parser also accepts --json after the verb."""
    parser = commands.add_parser(name, help=help, description=help, **kwargs)
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print results as JSON",
    )
    parser.set_defaults(handler=handler)
    return parser


def add_run_options(
    parser: argparse.ArgumentParser, *, safety_backup: bool = False
) -> None:
    """The flags every verb that runs a plan shares."""
    parser.add_argument(
        "--break-lock",
        action="store_true",
        help="break the target's lock if the process holding it is gone",
    )
    if safety_backup:
        parser.add_argument(
            "--no-safety-backup",
            action="store_true",
            help="skip the safety backup of a destructive plan (the journal "
            "records it)",
        )


def workspace(args: argparse.Namespace) -> Workspace:
    """The workspace a verb works in; main() closes it when the verb returns."""
    from core.workspace import Workspace

    ws = Workspace.open(args.config)
    _opened.append(ws)
    return ws


_opened: list[Workspace] = []


def close_workspaces() -> None:
    """Close the workspaces this command opened: the alerts still queued for
    webhooks go out first (all sinks at once, a bounded wait), so a verb that
    ends, or fails, at once does not take its last alerts with it. Ctrl-C or
    SIGTERM end the wait (what is left is journaled); a second one aborts."""
    if not _opened:
        return
    stop = threading.Event()

    def stopping(signum: int, frame: object) -> None:
        if stop.is_set():  # asked twice: go now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        stop.set()

    main = threading.current_thread() is threading.main_thread()
    if main:
        before = {
            s: signal.signal(s, stopping) for s in (signal.SIGINT, signal.SIGTERM)
        }
    try:
        while _opened:
            try:
                _opened.pop().close(stop=stop)
            except Exception:  # noqa: BLE001 - the command's own result stands
                log.exception("closing the workspace failed")
    finally:
        if main:
            for signum, handler in before.items():
                signal.signal(signum, handler)


def emit_json(value: Any) -> None:
    print(json.dumps(redact_value(value), indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table on stdout; nothing is shown by colour alone."""
    cells = [[redact("" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    print(
        "  ".join(
            h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)
        ).rstrip()
    )
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def when(iso: str | datetime | None) -> str:
    """A time as an operator reads it: '3 minutes ago'."""
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
    return humanize.naturaltime(datetime.now(UTC) - moment)


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return humanize.precisedelta(value, minimum_unit="seconds", format="%0.1f")


def size(value: int | None) -> str:
    return "-" if value is None else humanize.naturalsize(value, binary=True)


def render_plan(plan: Plan, *, safety_backup: bool = True) -> None:
    """The preview: steps and their SQL, risks, safety backup, estimate."""
    print(f"Plan: {plan.title}")
    print(f"  target: {plan.target}    kind: {plan.kind}")
    for key, value in plan.summary.items():
        if isinstance(value, (str, int, float)) or value is None:
            print(f"  {key.replace('_', ' ')}: {value if value is not None else '-'}")
    if plan.safety_backup is not None and plan.destructive:
        if safety_backup:
            print(f"  safety backup first: {plan.safety_backup.description}")
        else:
            print(
                "  safety backup: NONE, declined with --no-safety-backup "
                "(the journal records it)"
            )
    transactional = "yes" if plan.transactional else "NO"
    if len(plan.steps) > 1:
        transactional += " (each step on its own; stopping between steps keeps the "
        transactional += "steps already done)"
    print(f"  each step all-or-nothing: {transactional}")
    estimate = seconds(plan.estimate) if plan.estimate else "unknown (no past runs)"
    print(f"  estimated duration: {estimate}")
    print()
    for number, step in enumerate(plan.steps, start=1):
        mark = "  [DESTRUCTIVE]" if step.destructive else ""
        print(f"Step {number}. {step.name}{mark}")
        if step.description:
            print(f"   {step.description}")
        if step.sql:
            for line in step.sql.strip().splitlines():
                print(f"     | {line}")
        elif step.not_previewable:
            print(f"     (not previewable: {step.not_previewable})")
    if plan.risks:
        print("\nRisks:")
        for risk in plan.risks:
            print(f"  - [{risk.severity.upper()}] {risk.message}")
    else:
        print("\nRisks: none found")
    if plan.postconditions:
        print("\nAfterwards dbr checks:")
        for condition in plan.postconditions:
            print(f"  - {condition.description}")


def confirm(plan: Plan, args: argparse.Namespace) -> None:
    """--yes, or a person at a terminal; otherwise refuse with exit status 3."""
    if getattr(args, "yes", False):
        return
    if getattr(args, "json", False) or not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise NotConfirmed(
            f"{plan.title}: not confirmed",
            cause="this run is not interactive",
            hint="review the plan above, then run again with --yes",
        )
    if plan.destructive:
        prompt = (
            f"\nThis plan destroys data. Type the target's name "
            f"({plan.target}) to go ahead: "
        )
        expected = plan.target
    else:
        prompt, expected = "\nGo ahead? [y/N] ", "y"
    print(prompt, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip()
    accepted = (
        answer == expected if plan.destructive else answer.lower() in ("y", "yes")
    )
    if not accepted:
        raise NotConfirmed(
            f"{plan.title}: not confirmed", cause=f"the answer was {answer!r}"
        )


def execute(
    ws: Workspace, plan: Plan, target: Target, args: argparse.Namespace, **options: Any
) -> Outcome:
    """Preview, confirm, run with progress on stderr; Ctrl-C stops between steps."""
    if getattr(args, "json", False):
        if not getattr(args, "yes", False):
            emit_json(plan.to_dict())
    else:
        render_plan(plan, safety_backup=not getattr(args, "no_safety_backup", False))
    confirm(plan, args)
    unsubscribe = ws.bus.subscribe(_progress_printer())
    try:
        with cancelled_by_signals() as cancel:
            return ws.executor.run(
                plan,
                target,
                confirmed=True,
                safety_backup=not getattr(args, "no_safety_backup", False),
                break_lock=getattr(args, "break_lock", False),
                cancel=cancel,
                options=options,
            )
    finally:
        unsubscribe()


def report(outcome: Outcome, args: argparse.Namespace) -> int:
    if getattr(args, "json", False):
        emit_json(outcome.to_dict())
    else:
        print(f"\noperation {outcome.operation_id}: {outcome.status.upper()}")
        if outcome.error:
            print(f"  {outcome.error}")
        for key, value in outcome.report.items():
            print(f"  {key.replace('_', ' ')}: {value}")
        for check in outcome.postconditions:
            print(
                f"  [{'ok' if check['ok'] else 'FAILED'}] {check['check']}: "
                f"{check['detail']}"
            )
        print(f"  details: dbr log show {outcome.operation_id}")
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _progress_printer() -> Callable[[Event], None]:
    def show(event: Event) -> None:
        if event.kind == ev.STEP_PROGRESS:
            return
        if event.kind in (
            ev.STEP_STARTED,
            ev.STEP_FINISHED,
            "step.log",
            ev.OPERATION_STARTED,
            ev.OPERATION_CANCELLED,
        ):
            try:
                print(
                    f"[{event.at:%H:%M:%S}] {redact(event.message)}",
                    file=sys.stderr,
                    flush=True,
                )
            except OSError:
                pass  # the terminal went away; the operation carries on

    return show


@contextmanager
def cancelled_by_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C or SIGTERM sets, so that the operation stops cleanly
    (its lock released, nothing partial kept); a second signal aborts now. A
    dropped SSH session (SIGHUP) does not stop it."""
    cancel = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        try:
            print(
                "dbr: stopping after the current step (again to abort now)",
                file=sys.stderr,
                flush=True,
            )
        except OSError:
            pass

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum, handler in (
            (signal.SIGINT, stop),
            (signal.SIGTERM, stop),
            (signal.SIGHUP, signal.SIG_IGN),
        ):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield cancel
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
