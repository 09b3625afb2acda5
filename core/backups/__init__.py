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
    plan_prune(ws, target, remove=(), policy=True) -> Plan
        Removes the backups named in remove (id prefixes, backups of target) and,
        with policy, what the retention policy removes (ConfigError for a target
        without one): kind "backup.prune", or "backup.remove" when policy is
        False. Never removed, whatever was asked: a pinned backup, the newest
        verified one of target, one a running operation depends on, the last
        complete one of target; a chosen one of these is "refused", with its
        reason. Judged again when it runs. plan.summary: keep, remove, refused,
        frees, detail {bytes_freed, chosen, policy, verdicts}.
    plan_remove(ws, ids, policy=False) -> list[Plan]     plan_prune per target of
        the chosen backups (id prefixes; DbrError for an unknown one)
    prune_verdicts(ws, target, remove=(), policy=True) -> list[Verdict]
        what plan_prune would do to each backup: action keep, remove or
        refused, with reasons
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
    plan_remove,
    plan_restore,
    prune_verdicts,
    rescan,
    restore_target,
    retention_verdicts,
    unpin,
    verify_backup,
)
from core.backups.catalog import Backup, Rescan
from core.backups.create import safety_backup_step
from core.backups.prune import REFUSED

__all__ = [
    "REFUSED",
    "Backup",
    "Rescan",
    "create_backup",
    "get_backup",
    "list_backups",
    "pin",
    "plan_prune",
    "plan_remove",
    "plan_restore",
    "prune_verdicts",
    "rescan",
    "restore_target",
    "retention_verdicts",
    "safety_backup_step",
    "unpin",
    "verify_backup",
]
