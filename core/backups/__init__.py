"""Backups: create, catalog, verify, restore, retention and prune.

The public API (the CLI and the console call these, nothing deeper):

    create_backup(ws, target, label=None, pin=False, progress=None,
                  *, break_lock=False) -> Backup
        Runs a one-step "backup.create" plan through the executor (lock, journal)
        and returns the new Backup record (.to_dict() for JSON). progress(done,
        total) receives bytes dumped (total None). Raises DbrError when the
        backup failed (LockHeld when another operation holds the target).
    list_backups(ws, target=None) -> list[Backup]       newest first
    get_backup(ws, id_prefix) -> Backup                  unique id prefix
    rescan(ws) -> Rescan                                 rebuild the index from
        the manifests of every target's backup folder; .damaged lists the rest
    pin(ws, id_prefix, reason=None) / unpin(ws, id_prefix) -> Backup
    verify_backup(ws, id_prefix, deep=False, progress=None) -> Verification
        Runs a one-step "backup.verify" plan; the result is recorded in the
        catalog either way. .ok, .to_dict().
    plan_restore(ws, id_prefix, target=None, into=None) -> Plan
        A "backup.restore" plan with its preflight already done (the backup
        verified, same dialect, roles/extensions/DEFINERs present; Refused
        otherwise); target is a target name, into a database URL. Run it with
        ws.executor.run(plan, restore_target(ws, plan), confirmed=True).
        plan.summary["tables"]: [{table, rows_now, rows_in_backup}].
    plan_prune(ws, target) -> Plan                       a "backup.prune" plan
    retention_verdicts(ws, target) -> list[Verdict]      keep/remove + reasons
        (ConfigError for a target without a retention policy)
    safety_backup_step(target, reason) -> Step           for other plans: takes a
        pinned backup; returns {"backup_id", "path"}, sets
        ctx.results["safety_backup_id"].
"""

from core.backups.api import (
    create_backup,
    get_backup,
    list_backups,
    pin,
    plan_prune,
    plan_restore,
    rescan,
    restore_target,
    retention_verdicts,
    unpin,
    verify_backup,
)
from core.backups.catalog import Backup, Rescan
from core.backups.create import safety_backup_step

__all__ = [
    "Backup", "Rescan", "create_backup", "get_backup", "list_backups", "pin",
    "plan_prune", "plan_restore", "rescan", "restore_target", "retention_verdicts",
    "safety_backup_step", "unpin", "verify_backup",
]
