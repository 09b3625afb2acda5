"""The functions behind core.backups' public API (documented there)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.backups import catalog
from core.backups.catalog import Backup, Rescan
from core.backups.create import plan_create
from core.errors import DbrError
from core.events import STEP_PROGRESS, Event

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


def create_backup(ws: Workspace, target: str, label: str | None = None,
                  pin: bool = False, progress: ProgressFn | None = None) -> Backup:
    """Back up target now, journaled as a backup.create operation."""
    resolved = ws.target(target)
    plan = plan_create(resolved, label=label, pin=pin,
                       estimate=ws.journal.estimate(resolved.name, "dump"))
    unsubscribe = _forward_progress(ws, progress)
    try:
        outcome = ws.executor.run(plan, resolved, confirmed=True)
    finally:
        unsubscribe()
    if not outcome.ok:
        raise DbrError(f"backup of {target} {outcome.status}",
                       cause=outcome.error or "",
                       hint=f"see `dbr log show {outcome.operation_id}`")
    return catalog.find(ws.store, outcome.results["backup_id"])


def list_backups(ws: Workspace, target: str | None = None) -> list[Backup]:
    if target is not None:
        ws.settings.target(target)  # a clear error for a name that is not there
    return catalog.listed(ws.store, target)


def get_backup(ws: Workspace, id_prefix: str) -> Backup:
    return catalog.find(ws.store, id_prefix)


def rescan(ws: Workspace) -> Rescan:
    folders = [t.backup_dir for t in ws.settings.targets.values() if t.backup_dir]
    return catalog.rescan(ws.store, folders)


def pin(ws: Workspace, id_prefix: str, reason: str | None = None) -> Backup:
    return catalog.set_pin(ws.store, id_prefix, True, reason)


def unpin(ws: Workspace, id_prefix: str) -> Backup:
    return catalog.set_pin(ws.store, id_prefix, False)

