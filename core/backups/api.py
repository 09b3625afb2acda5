"""The functions behind core.backups' public API (documented there)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.backups import catalog, pg_beside, prune, restore, verify
from core.backups.catalog import Backup, Rescan
from core.backups.create import STEP_SAFETY, plan_create
from core.backups.retention import Verdict
from core.backups.stream import throttled
from core.backups.verify import Verification
from core.errors import ConfigError, DbrError
from core.events import STEP_PROGRESS, VERIFY_FAILED, Event, Severity
from core.plans import Context, Plan, Step
from core.targets import Target

if TYPE_CHECKING:
    from core.workspace import Workspace


ProgressFn = Callable[[float, "float | None"], None]


def _forward_progress(ws: Workspace, progress: ProgressFn | None) -> Callable[[], None]:
    """Subscribe progress to the bus's step.progress events; returns unsubscribe."""
    if progress is None:
        return lambda: None

    def on_event(event: Event) -> None:
        if event.kind == STEP_PROGRESS:
            progress(event.data.get("done", 0), event.data.get("total"))

    return ws.bus.subscribe(on_event)


def create_backup(
    ws: Workspace,
    target: str,
    label: str | None = None,
    pin: bool = False,
    progress: ProgressFn | None = None,
    *,
    break_lock: bool = False,
    cancel: threading.Event | None = None,
) -> Backup:
    """Back up target now, journaled as a backup.create operation; setting
    cancel stops the dump, and nothing of it is kept."""
    resolved = ws.target(target)
    plan = plan_create(
        resolved,
        label=label,
        pin=pin,
        estimate=ws.journal.estimate(resolved.name, "dump"),
    )
    unsubscribe = _forward_progress(ws, progress)
    try:
        outcome = ws.executor.run(
            plan, resolved, confirmed=True, break_lock=break_lock, cancel=cancel
        )
    finally:
        unsubscribe()
    if not outcome.ok:
        raise DbrError(
            f"backup of {target} {outcome.status}",
            cause=outcome.error or "",
            hint=f"see `dbr log show {outcome.operation_id}`",
        )
    return catalog.find(ws.store, outcome.results["backup_id"])


def list_backups(ws: Workspace, target: str | None = None) -> list[Backup]:
    if target is not None:
        ws.settings.target(target)  # a clear error for a name that is not there
    return catalog.listed(ws.store, target)


def get_backup(ws: Workspace, id_prefix: str) -> Backup:
    return catalog.find(ws.store, id_prefix)


def rescan(ws: Workspace) -> Rescan:
    folders = [
        t.backup_dir.expanduser().absolute()
        for t in ws.settings.targets.values()
        if t.backup_dir
    ]
    return catalog.rescan(ws.store, folders)


def pin(ws: Workspace, id_prefix: str, reason: str | None = None) -> Backup:
    return catalog.set_pin(ws.store, id_prefix, True, reason)


def unpin(ws: Workspace, id_prefix: str) -> Backup:
    return catalog.set_pin(ws.store, id_prefix, False)


def _target_of(ws: Workspace, backup: Backup) -> Target:
    """The backup's target, or a stand-in naming it when dbr.toml no longer has it."""
    if backup.target in ws.settings.targets:
        return ws.target(backup.target)
    # Only its name is used (lock, journal); deep verification will say what lacks.
    return Target.from_url("sqlite://", backup.target)


def verify_backup(
    ws: Workspace,
    id_prefix: str,
    deep: bool = False,
    progress: ProgressFn | None = None,
) -> Verification:
    """Verify a backup as a journaled backup.verify operation; the result is kept."""
    backup = catalog.find(ws.store, id_prefix)
    target = _target_of(ws, backup)
    server = target if backup.target in ws.settings.targets else None
    done: list[Verification] = []

    def run(ctx: Context) -> dict[str, Any]:
        result = verify.verify(
            ctx.store,
            backup,
            deep=deep,
            target=server,
            stop=ctx.cancelled,
            progress=throttled(
                lambda n: ctx.progress(n, backup.size, "bytes read", unit="bytes"),
                backup.size,
            ),
        )
        done.append(result)
        if not result.ok:
            ctx.bus.emit(
                VERIFY_FAILED,
                f"backup {backup.id} of {backup.target} "
                f"failed verification: {'; '.join(result.problems)}",
                severity=Severity.CRITICAL,
                target=backup.target,
                operation_id=ctx.operation_id,
                data=result.to_dict(),
            )
            raise DbrError(
                f"backup {backup.id} failed verification",
                cause="; ".join(result.problems),
            )
        return result.to_dict()

    kind = "deep verify" if deep else "verify"
    step = Step(
        kind,
        f"{kind} backup {backup.id} ({backup.size} bytes)",
        run,
        transactional=False,
        estimate=ws.journal.estimate(backup.target, kind),
        not_previewable="reads the backup file; a deep verify restores it "
        "into a scratch database that is dropped afterwards",
    )
    plan = Plan(
        "backup.verify",
        backup.target,
        f"{kind} backup {backup.id}",
        [step],
        summary={"backup_id": backup.id, "deep": deep},
    )
    unsubscribe = _forward_progress(ws, progress)
    try:
        outcome = ws.executor.run(plan, target, confirmed=True)
    finally:
        unsubscribe()
    if done:
        return done[0]
    raise DbrError(
        f"verification of backup {backup.id} {outcome.status}",
        cause=outcome.error or "",
        hint=f"see `dbr log show {outcome.operation_id}`",
    )


def plan_restore(
    ws: Workspace,
    id_prefix: str,
    target: str | None = None,
    into: str | None = None,
    *,
    in_place: bool = False,
) -> Plan:
    """A backup.restore plan, after preflight (verification, dialect, needs).

    PostgreSQL restores beside the database and swap it in where they can;
    in_place keeps to the one-transaction restore inside it.
    """
    if target and into:
        raise ConfigError("restore takes --target or --into, not both")
    backup = catalog.find(ws.store, id_prefix)
    if into:
        probe = Target.from_url(into)
        name = f"{probe.dialect}:{probe.display_url.split('://', 1)[-1]}"
        destination = Target(
            replace(probe.config, name=name, backup_dir=backup.path.parent)
        )
    else:
        destination = ws.target(target or backup.target)
    reopened = None
    with ThreadPoolExecutor(1, thread_name_prefix="dbr-checksum") as pool:
        # Fully verified before: proving the file unchanged since is enough,
        # and the hashing (no lock held) overlaps the first connection.
        checked = pool.submit(verify.checksum_only, backup) if backup.verified else None
        if destination.dialect == "postgresql" and backup.dialect == "postgresql":
            reopened = pg_beside.reopen_if_interrupted(destination)
        if checked is not None:
            verification = checked.result()
        else:
            verification = verify.verify(ws.store, backup)
    restore.preflight(backup, destination, verification)
    plan = restore.build_plan(
        backup,
        destination,
        verification,
        estimate=ws.journal.estimate(destination.name, restore.STEP_RESTORE),
        safety_estimate=ws.journal.estimate(destination.name, STEP_SAFETY),
        into=bool(into),
        in_place=in_place,
    )
    if reopened:
        plan.summary["reopened"] = reopened
    _destinations[id(plan)] = destination
    weakref.finalize(plan, _destinations.pop, id(plan), None)
    return plan


# The Target each restore plan was made for (an --into database is not in dbr.toml).
_destinations: dict[int, Target] = {}


def restore_target(ws: Workspace, plan: Plan) -> Target:
    """The Target to pass to ws.executor.run() with a plan from plan_restore()."""
    return _destinations.get(id(plan)) or ws.target(plan.target)


def retention_verdicts(
    ws: Workspace, target: str, backups: list[Backup] | None = None
) -> list[Verdict]:
    """Retention's verdict on each backup of target; backups: its catalog if listed."""
    policy = ws.settings.target(target).retention
    return prune.verdicts(ws.store, ws.journal, target, policy, backups=backups)


def plan_prune(
    ws: Workspace, target: str, remove: Sequence[str] = (), policy: bool = True
) -> Plan:
    """Remove the chosen backups (id prefixes) and, with policy, what it drops."""
    retention = ws.settings.target(target).retention
    return prune.build_plan(
        ws.store, ws.journal, target, retention, chosen=remove, use_policy=policy
    )


def plan_remove(ws: Workspace, ids: Sequence[str], policy: bool = False) -> list[Plan]:
    """One plan per target of the chosen backups (id prefixes), in the order named."""
    by_target: dict[str, list[str]] = {}
    for prefix in ids:
        backup = catalog.find(ws.store, prefix)
        by_target.setdefault(backup.target, []).append(backup.id)
    for name in by_target:
        ws.settings.target(name)  # a clear error for a target gone from dbr.toml
    return [plan_prune(ws, name, chosen, policy) for name, chosen in by_target.items()]


def prune_verdicts(
    ws: Workspace, target: str, remove: Sequence[str] = (), policy: bool = True
) -> list[Verdict]:
    """What plan_prune would do to each backup of target, with reasons."""
    retention = ws.settings.target(target).retention
    chosen = prune.resolve(ws.store, target, remove)
    return prune.judge(
        ws.store, ws.journal, target, chosen=chosen, policy=retention, use_policy=policy
    )
