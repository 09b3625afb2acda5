"""Taking a backup: preflight, dump to a partial file, rename, manifest, index."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from core.backups import catalog, dumpers
from core.backups.catalog import Backup
from core.backups.stream import partial_file, throttled
from core.errors import Cancelled, DbrError
from core.events import BACKUP_FAILED, Severity
from core.plans import Context, Plan, Step
from core.state import Store, new_id, utcnow
from core.targets import Target

log = logging.getLogger(__name__)

STEP_DUMP = "dump"
STEP_SAFETY = "safety backup"


def backup_folder(target: Target) -> Path:
    folder = target.config.backup_dir
    if folder is None:
        raise DbrError(
            f"target {target.name!r} has no backup folder",
            hint=f"set backup_dir in [targets.{target.name}] of dbr.toml",
        )
    return Path(folder).expanduser().absolute()


def create(
    store: Store,
    target: Target,
    *,
    label: str | None = None,
    pinned: bool = False,
    pin_reason: str | None = None,
    progress: Any = None,
    stop: Any = None,
    operation_id: str | None = None,
    folder: Path | None = None,
) -> Backup:
    """Dump target into its backup folder and index it; nothing is left on failure.

    progress(bytes) receives the uncompressed bytes dumped so far; stop() is polled
    between chunks and cancels the backup when it returns true.
    """
    folder = folder or backup_folder(target)
    prepared = dumpers.prepare(target)  # may refuse: no file has been written yet
    try:
        catalog.ensure_folder(folder)
    except OSError as exc:
        raise DbrError(
            f"cannot use the backup folder {folder}",
            cause=exc.strerror or str(exc),
            hint="check backup_dir in dbr.toml and its permissions",
        ) from None
    catalog.clean_partials(folder)
    backup_id = new_id()
    started = utcnow()
    clock = time.monotonic()
    name = catalog.file_name(target.name, target.dialect, backup_id, started)
    final = folder / name
    try:
        with partial_file(folder, name) as (partial, out):
            dumped = dumpers.dump(
                target, prepared, out, folder, progress=progress, stop=stop
            )
            os.replace(partial, final)
    except OSError as exc:
        raise DbrError(
            f"backup of {target.name} failed while writing {folder}",
            cause=exc.strerror or str(exc),
            hint="free space in the backup folder (nothing partial was kept)",
        ) from None
    finished = utcnow()
    manifest = {
        "format_version": catalog.FORMAT_VERSION,
        "id": backup_id,
        "target": target.name,
        "dialect": target.dialect,
        "database": target.database
        if target.dialect != "sqlite"
        else str(target.sqlite_path),
        "file": name,
        "compression": "zstd",
        "status": catalog.COMPLETE,
        "created_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration": round(time.monotonic() - clock, 3),
        "size": dumped.written.size,
        "raw_size": dumped.written.raw_size,
        "sha256": dumped.written.sha256,
        "server_version": dumped.server_version,
        "client_version": dumped.client_version,
        "alembic_heads": dumped.alembic_heads,
        "tables": dumped.tables,
        "requires": dumped.requires,
        "notes": dumped.notes,
        "warnings": dumped.warnings,
        "restore_hints": dumped.restore_hints,
        "label": label,
        "pinned": pinned,
        "pin_reason": (pin_reason or "pinned by the operator") if pinned else None,
        "operation_id": operation_id,
    }
    backup = Backup.from_manifest(manifest, final)
    try:
        catalog.write_json(backup.manifest_path, manifest)
        catalog.index(store, backup)
    except BaseException:
        # A file without its manifest or index entry would be a backup nobody lists.
        final.unlink(missing_ok=True)
        backup.manifest_path.unlink(missing_ok=True)
        raise
    log.info(
        "backup %s of %s written: %s bytes", backup_id, target.name, dumped.written.size
    )
    return backup


def _run_create(
    ctx: Context,
    target: Target,
    label: str | None,
    pinned: bool,
    pin_reason: str | None,
) -> Backup:
    def progress(done: int) -> None:
        ctx.progress(done, None, f"{done} bytes dumped", unit="bytes")

    try:
        return create(
            ctx.store,
            target,
            label=label,
            pinned=pinned,
            pin_reason=pin_reason,
            progress=throttled(progress),
            stop=ctx.cancelled,
            operation_id=ctx.operation_id,
        )
    except Cancelled:
        raise  # the operator's doing: the operation ends cancelled, no alarm
    except Exception as exc:
        ctx.bus.emit(
            BACKUP_FAILED,
            f"backup of {target.name} failed: {exc}",
            severity=Severity.CRITICAL,
            target=target.name,
            operation_id=ctx.operation_id,
            data={"label": label},
        )
        raise


def safety_backup_step(target: Target, reason: str) -> Step:
    """A step that takes a pinned backup of target, labelled with reason.

    Its run returns {"backup_id", "path"} and puts the id in
    ctx.results["safety_backup_id"].
    """

    def run(ctx: Context) -> dict[str, Any]:
        backup = _run_create(ctx, target, reason, True, f"safety backup: {reason}")
        ctx.results["safety_backup_id"] = backup.id
        ctx.log(f"safety backup {backup.id} written to {backup.path}")
        return {
            "backup_id": backup.id,
            "path": str(backup.path),
            "size": backup.size,
            "sha256": backup.sha256,
        }

    return Step(
        STEP_SAFETY,
        f"pinned backup of {target.name} as it is now ({reason})",
        run,
        transactional=False,
        not_previewable="a backup runs the dump tool, not SQL",
        detail={"safety_backup": True},
    )


def plan_create(
    target: Target,
    *,
    label: str | None = None,
    pin: bool = False,
    estimate: float | None = None,
) -> Plan:
    """A one-step plan, so that a backup takes the lock and is journaled."""

    def run(ctx: Context) -> dict[str, Any]:
        backup = _run_create(ctx, target, label, pin, None)
        ctx.results["backup_id"] = backup.id
        return {
            "backup_id": backup.id,
            "path": str(backup.path),
            "size": backup.size,
            "raw_size": backup.raw_size,
            "sha256": backup.sha256,
            "tables": len(backup.tables),
        }

    step = Step(
        STEP_DUMP,
        f"dump {target.name} into {backup_folder(target)}",
        run,
        transactional=False,
        estimate=estimate,
        not_previewable="a backup runs the dump tool, not SQL",
    )
    return Plan(
        "backup.create",
        target.name,
        f"back up {target.name}",
        [step],
        summary={"label": label, "pin": pin, "backup_dir": str(backup_folder(target))},
    )
