"""The prune plan: remove the backups the operator chose and/or the policy drops.

Whatever was asked, four backups are never removed: a pinned one, the newest
verified one of its target, one a running operation depends on, and the last
complete one of its target. A chosen backup that is one of these is "refused", with
its reason; the plan is judged again when it runs, so a backup pinned or put to use
since the preview stays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import humanize

from core.backups import catalog, retention
from core.backups.catalog import Backup
from core.backups.retention import KEEP, REMOVE, Verdict
from core.config import RetentionPolicy
from core.errors import DbrError
from core.events import Severity
from core.journal import RUNNING, Journal
from core.plans import Context, Plan, Postcondition, Risk, Step
from core.state import Store, utcnow

REFUSED = "refused"  # chosen by the operator, but a safeguard keeps it
CHOSEN = "chosen by the operator"
NOT_CHOSEN = "not chosen"


def in_use(
    journal: Journal, target: str, backup_ids: list[str], *, exclude: str | None = None
) -> dict[str, str]:
    """Backups a running operation on target names in its plan or options."""
    used: dict[str, str] = {}
    for operation in journal.operations(target, limit=0, status=RUNNING):
        if operation["status"] != RUNNING or operation["id"] == exclude:
            continue
        text = json.dumps([operation["plan"], operation["options"]], default=str)
        for backup_id in backup_ids:
            if backup_id in text:
                used.setdefault(backup_id, operation["id"])
    return used


def verdicts(
    store: Store,
    journal: Journal,
    target: str,
    policy: RetentionPolicy | None,
    *,
    now: datetime | None = None,
    exclude: str | None = None,
    backups: list[Backup] | None = None,
) -> list[Verdict]:
    """The retention policy's verdict on every backup of target, newest first."""
    return judge(
        store,
        journal,
        target,
        policy=policy,
        use_policy=True,
        now=now,
        exclude=exclude,
        backups=backups,
    )


def judge(
    store: Store,
    journal: Journal,
    target: str,
    *,
    chosen: Sequence[str] = (),
    policy: RetentionPolicy | None = None,
    use_policy: bool = True,
    now: datetime | None = None,
    exclude: str | None = None,
    backups: list[Backup] | None = None,
) -> list[Verdict]:
    """A verdict on every backup of target: keep, remove, or refused (chosen).

    chosen are full backup ids the operator asked to remove; use_policy adds what
    the retention policy removes (ConfigError when target has none). backups, when
    given, is the target's catalog as the caller just listed it.
    """
    if backups is None:
        backups = catalog.listed(store, target)
    used = in_use(journal, target, [b.id for b in backups], exclude=exclude)
    if use_policy:
        planned = retention.evaluate(
            backups, policy, now or utcnow(), in_use=used, target=target
        )
    else:
        planned = [
            Verdict(b.id, KEEP, [NOT_CHOSEN], b.size or 0, b.created_at, target)
            for b in backups
        ]
    by_id = {b.id: b for b in backups}
    verified = [b for b in backups if b.complete and b.verified]
    newest_verified = (
        max(verified, key=lambda b: (b.created_at, b.id)).id if verified else None
    )
    wanted = set(chosen)
    for verdict in planned:
        if verdict.id not in wanted:
            continue
        guards = safeguards(by_id[verdict.id], newest_verified, used)
        if guards:
            verdict.action, verdict.reasons = (
                REFUSED,
                [f"{CHOSEN}, refused: {'; '.join(guards)}"],
            )
        elif verdict.action == REMOVE or not use_policy:
            verdict.action, verdict.reasons = REMOVE, [CHOSEN]
        else:
            verdict.action, verdict.reasons = (
                REMOVE,
                [f"{CHOSEN} (the policy would keep it: {'; '.join(verdict.reasons)})"],
            )
    _keep_the_last_complete(planned, by_id, target, wanted)
    return planned


def safeguards(
    backup: Backup, newest_verified: str | None, used: dict[str, str]
) -> list[str]:
    """Why backup must stay whatever the operator chose; empty when it may go."""
    why = []
    if backup.pinned:
        why.append("pinned" + (f" ({backup.pin_reason})" if backup.pin_reason else ""))
    if backup.id == newest_verified:
        why.append(f"the newest verified backup of {backup.target}")
    if backup.id in used:
        why.append(f"used by running operation {used[backup.id]}")
    return why


def _keep_the_last_complete(
    planned: list[Verdict], by_id: dict[str, Backup], target: str, chosen: set[str]
) -> None:
    """Spare the newest complete backup if the plan would leave none."""
    complete = sorted(
        (v for v in planned if by_id[v.id].complete),
        key=lambda v: (by_id[v.id].created_at, v.id),
        reverse=True,
    )
    if not complete or any(v.action != REMOVE for v in complete):
        return
    last = complete[0]
    reason = f"the last complete backup of {target}"
    if last.id in chosen:
        last.action, last.reasons = REFUSED, [f"{CHOSEN}, refused: {reason}"]
    else:
        last.action, last.reasons = KEEP, [reason]


def resolve(store: Store, target: str, id_prefixes: Sequence[str]) -> list[str]:
    """The full ids of the chosen backups; each must be a backup of target."""
    ids = []
    for prefix in id_prefixes:
        backup = catalog.find(store, prefix)
        if backup.target != target:
            raise DbrError(
                f"backup {backup.id} is a backup of {backup.target}, not of {target}",
                hint=f"remove it with the backups of {backup.target}",
            )
        if backup.id not in ids:
            ids.append(backup.id)
    return ids


def build_plan(
    store: Store,
    journal: Journal,
    target: str,
    policy: RetentionPolicy | None,
    *,
    chosen: Sequence[str] = (),
    use_policy: bool = True,
) -> Plan:
    """A backup.prune plan (the policy, and any chosen), or backup.remove (chosen)."""
    chosen = resolve(store, target, chosen)
    if not chosen and not use_policy:
        raise DbrError(
            f"nothing to remove from {target}",
            hint="name the backups to remove, or prune by the policy",
        )
    planned = judge(
        store, journal, target, chosen=chosen, policy=policy, use_policy=use_policy
    )
    removals = [v for v in planned if v.action == REMOVE]
    refused = [v for v in planned if v.action == REFUSED]
    freed = retention.bytes_freed(planned)

    def run(ctx: Context) -> dict[str, Any]:
        # Judged again now: a backup pinned or put to use since the preview stays.
        fresh = {
            v.id: v
            for v in judge(
                ctx.store,
                ctx.journal,
                target,
                chosen=chosen,
                policy=policy,
                use_policy=use_policy,
                exclude=ctx.operation_id,
            )
        }
        by_id = {b.id: b for b in catalog.listed(ctx.store, target)}
        removed: list[str] = []
        spared: dict[str, str] = {}
        gone: list[str] = []
        total = 0
        for number, verdict in enumerate(removals, start=1):
            if ctx.cancelled():
                break
            now, backup = fresh.get(verdict.id), by_id.get(verdict.id)
            if now is None or backup is None:
                spared[verdict.id] = "no longer in the catalog"
            elif now.action != REMOVE:
                spared[verdict.id] = "; ".join(now.reasons)
            else:
                catalog.delete(ctx.store, backup)
                removed.append(verdict.id)
                gone.extend(str(p) for p in (backup.path, backup.manifest_path))
                total += backup.size or 0
            ctx.progress(
                number,
                len(removals),
                f"backup {verdict.id}: "
                + (
                    "removed"
                    if verdict.id in removed
                    else f"kept, {spared.get(verdict.id)}"
                ),
            )
        for backup_id, why in spared.items():
            ctx.log(f"backup {backup_id} kept: {why}", Severity.WARNING)
        ctx.results["removed"], ctx.results["removed_files"] = removed, gone
        return {"removed": removed, "spared": spared, "bytes_freed": total}

    going = sum(v.id in chosen for v in removals)
    what = _what(len(chosen), going, use_policy, target)
    step = Step(
        "remove backups",
        f"delete {len(removals)} backup files and their manifests of {target}",
        run,
        destructive=bool(removals),
        transactional=False,
        not_previewable="deletes files, runs no SQL",
        detail={"remove": [v.id for v in removals]},
    )
    risks = []
    if removals:
        risks.append(
            Risk(
                "delete_backup",
                f"removes {len(removals)} backups of "
                f"{target} ({', '.join(v.id for v in removals)}), freeing "
                f"{humanize.naturalsize(freed, binary=True)}",
                severity="critical",
                bytes=freed,
            )
        )
    risks += [Risk("refused", f"backup {v.id} stays: {v.reasons[0]}") for v in refused]
    return Plan(
        "backup.prune" if use_policy else "backup.remove",
        target,
        what,
        [step],
        risks=risks,
        postconditions=[
            Postcondition(
                "the catalog and the backup folder agree",
                lambda ctx: _agree(
                    catalog.listed(ctx.store, target),
                    ctx.results.get("removed", []),
                    ctx.results.get("removed_files", []),
                ),
            )
        ],
        summary={
            "keep": len(planned) - len(removals) - len(refused),
            "remove": len(removals),
            "refused": len(refused),
            "frees": humanize.naturalsize(freed, binary=True),
            "detail": {
                "bytes_freed": freed,
                "chosen": list(chosen),
                "policy": use_policy,
                "verdicts": [v.to_dict() for v in planned],
            },
        },
    )


def _what(chosen: int, going: int, use_policy: bool, target: str) -> str:
    """The plan's title: how many chosen backups go, and whether the policy acts."""
    backups = f"{chosen} chosen backup{'s' if chosen != 1 else ''}"
    if going != chosen:
        backups = f"{going} of the {backups}"
    if not use_policy:
        return f"remove {backups} of {target}"
    return f"prune backups of {target}" + (f" and remove {backups}" if chosen else "")


def _agree(
    listed: list[Backup], removed: list[str], removed_files: list[str]
) -> tuple[bool, str]:
    problems = [f"{b.id}: {b.path} is missing" for b in listed if not b.path.is_file()]
    problems += [
        f"{b.id}: its manifest {b.manifest_path} is missing"
        for b in listed
        if not b.manifest_path.is_file()
    ]
    problems += [
        f"{b.id} was removed but is still listed" for b in listed if b.id in removed
    ]
    problems += [
        f"{path} was removed but is still there"
        for path in removed_files
        if Path(path).exists()
    ]
    if problems:
        return False, "; ".join(problems)
    return True, f"{len(listed)} backups listed, each with its file and manifest"
