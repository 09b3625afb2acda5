"""The prune plan: remove what the retention policy no longer keeps."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import humanize

from core.backups import catalog, retention
from core.backups.catalog import Backup
from core.backups.retention import REMOVE, Verdict
from core.config import RetentionPolicy
from core.journal import RUNNING, Journal
from core.plans import Context, Plan, Postcondition, Risk, Step
from core.state import Store, utcnow


def in_use(journal: Journal, target: str, backup_ids: list[str], *,
           exclude: str | None = None) -> dict[str, str]:
    """Backups a running operation on target names in its plan or options."""
    used: dict[str, str] = {}
    for operation in journal.operations(target, limit=0):
        if operation["status"] != RUNNING or operation["id"] == exclude:
            continue
        text = json.dumps([operation["plan"], operation["options"]], default=str)
        for backup_id in backup_ids:
            if backup_id in text:
                used.setdefault(backup_id, operation["id"])
    return used


def verdicts(store: Store, journal: Journal, target: str,
             policy: RetentionPolicy | None, *, now: datetime | None = None,
             exclude: str | None = None) -> list[Verdict]:
    backups = catalog.listed(store, target)
    used = in_use(journal, target, [b.id for b in backups], exclude=exclude)
    return retention.evaluate(backups, policy, now or utcnow(), in_use=used,
                              target=target)


def build_plan(store: Store, journal: Journal, target: str,
               policy: RetentionPolicy | None) -> Plan:
    planned = verdicts(store, journal, target, policy)
    removals = [v for v in planned if v.action == REMOVE]
    freed = retention.bytes_freed(planned)

    def run(ctx: Context) -> dict[str, Any]:
        # Judged again now: a backup pinned or put to use since the preview stays.
        fresh = {v.id: v for v in verdicts(ctx.store, ctx.journal, target, policy,
                                           exclude=ctx.operation_id)}
        by_id = {b.id: b for b in catalog.listed(ctx.store, target)}
        removed, spared, total = [], [], 0
        for number, verdict in enumerate(removals, start=1):
            if ctx.cancelled():
                break
            now = fresh.get(verdict.id)
            backup = by_id.get(verdict.id)
            if now is None or backup is None or now.action != REMOVE:
                spared.append(verdict.id)
                continue
            catalog.delete(ctx.store, backup)
            removed.append(verdict.id)
            total += backup.size or 0
            ctx.progress(number, len(removals), f"removed backup {verdict.id}")
        ctx.results["removed"] = removed
        return {"removed": removed, "spared": spared, "bytes_freed": total}

    step = Step("remove backups", f"delete {len(removals)} backup files and their "
                f"manifests of {target}", run, destructive=bool(removals),
                transactional=False, not_previewable="deletes files, runs no SQL",
                detail={"remove": [v.id for v in removals]})
    risks = []
    if removals:
        risks.append(Risk("delete_backup", f"removes {len(removals)} backups of "
                          f"{target}, freeing "
                          f"{humanize.naturalsize(freed, binary=True)}", bytes=freed))
    return Plan(
        "backup.prune", target, f"prune backups of {target}", [step], risks=risks,
        postconditions=[Postcondition(
            "the catalog and the backup folder agree",
            lambda ctx: _agree(catalog.listed(ctx.store, target),
                               ctx.results.get("removed", [])))],
        summary={"keep": len(planned) - len(removals), "remove": len(removals),
                 "frees": humanize.naturalsize(freed, binary=True),
                 "detail": {"bytes_freed": freed,
                            "verdicts": [v.to_dict() for v in planned]}},
    )


def _agree(listed: list[Backup], removed: list[str]) -> tuple[bool, str]:
    problems = [f"{b.id}: {b.path} is missing" for b in listed if not b.path.is_file()]
    problems += [f"{b.id} was removed but is still listed" for b in listed
                 if b.id in removed]
    if problems:
        return False, "; ".join(problems)
    return True, f"{len(listed)} backups listed, each with its file"
