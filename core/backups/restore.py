"""The restore plan: what will be replaced, preflight, safety backup, load, check."""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import timedelta
from typing import Any

import humanize
import sqlalchemy as sa

from core.backups import catalog, inspect, loaders, pg_beside
from core.backups.catalog import Backup
from core.backups.create import STEP_SAFETY, safety_backup_step
from core.backups.inspect import compare_counts
from core.backups.stream import throttled
from core.backups.verify import Verification
from core.errors import DbrError, Refused
from core.events import Severity
from core.plans import Context, Plan, Postcondition, Risk, Step
from core.state import utcnow
from core.targets import Target

log = logging.getLogger(__name__)

STEP_RESTORE = "restore"


def current_state(target: Target) -> dict[str, Any]:
    """Row counts and Alembic heads of target now; an absent SQLite file is empty."""
    if target.dialect == "sqlite" and not target.sqlite_path.exists():
        return {"tables": {}, "heads": []}
    try:
        with target.engine().connect() as conn:
            return {
                "tables": inspect.row_counts(conn, target.dialect),
                "heads": inspect.alembic_heads(conn, target.dialect),
            }
    except sa.exc.DBAPIError as exc:
        raise DbrError(
            f"cannot read {target.name} ({target.display_url})",
            cause=str(exc.orig).strip().splitlines()[0],
            hint="check that the database exists and is reachable",
        ) from None


def preflight(backup: Backup, target: Target, verification: Verification) -> None:
    """Refuse before anything is changed: wrong dialect, unsound backup, lacks."""
    if backup.dialect != target.dialect:
        raise Refused(
            f"backup {backup.id} cannot be restored into {target.name}",
            cause=f"it is a {backup.dialect} backup and {target.name} "
            f"is {target.dialect}",
            hint=f"pick a backup of this target (`dbr backups list {target.name}`)",
        )
    if not backup.complete:
        raise Refused(f"backup {backup.id} is not complete", hint="pick another backup")
    if not verification.ok:
        raise Refused(
            f"backup {backup.id} failed verification; it will not be restored",
            cause="; ".join(verification.problems),
            hint="pick another backup (`dbr backups list`)",
        )
    if backup.deep_verify_ok is False:
        raise Refused(
            f"backup {backup.id} failed its deep verification; it will not be restored",
            cause="; ".join(
                f"{c['check']}: {c['detail']}"
                for c in (backup.manifest.get("deep_verification") or {}).get(
                    "checks", []
                )
                if not c.get("ok")
            ),
            hint=f"run `dbr backups verify {backup.id} --deep` again, or "
            "pick another backup",
        )
    missing = inspect.missing_requirements(
        target, backup.manifest.get("requires") or {}
    )
    if missing:
        raise Refused(
            f"{target.name} lacks what backup {backup.id} needs",
            cause="; ".join(missing),
            hint="provide what is named (roles or accounts, extensions, server "
            "settings), then plan the restore again",
        )


def build_plan(
    backup: Backup,
    target: Target,
    verification: Verification,
    *,
    estimate: float | None,
    safety_estimate: float | None,
    into: bool,
    in_place: bool = False,
) -> Plan:
    """The restore plan; preflight must have passed."""
    now_state = current_state(target)
    tables = _table_changes(now_state["tables"], backup.tables)
    # Rows now in the tables the backup holds; tables outside it are listed apart.
    rows_now = sum(
        rows for name, rows in now_state["tables"].items() if name in backup.tables
    )
    rows_backup = sum(backup.tables.values())
    age = (utcnow() - backup.created_at).total_seconds()
    risks = []
    if now_state["tables"]:
        risks.append(
            Risk(
                "replace_data",
                f"replaces {len(backup.tables)} tables of "
                f"{target.name}: {rows_now:,} rows now, {rows_backup:,} in "
                "the backup; changes since the backup are lost",
                severity="critical",
                rows=rows_now,
            )
        )
    # Tables the backup lacks are dropped or left whole: said below, not here.
    lost = [
        t
        for t in tables
        if t["rows_in_backup"] is not None
        and (t["rows_now"] or 0) > t["rows_in_backup"]
    ]
    for change in lost:
        risks.append(
            Risk(
                "rows_lost",
                f"{change['table']}: {change['rows_now']} rows "
                f"now, {change['rows_in_backup'] or 0} after the restore",
                table=change["table"],
                rows=change["rows_now"] - (change["rows_in_backup"] or 0),
            )
        )
    dropped, kept = _not_in_backup(target.dialect, backup, tables)
    for change in dropped:
        risks.append(
            Risk(
                "table_dropped",
                f"{change['table']}: not in the backup, "
                f"DROPPED by the restore with its {change['rows_now']:,} "
                f"rows ({_why_dropped(target.dialect)})",
                severity="critical",
                table=change["table"],
                rows=change["rows_now"],
            )
        )
    if kept:
        risks.append(
            Risk(
                "left_in_place",
                "not in the backup, left as they are: "
                + ", ".join(t["table"] for t in kept),
            )
        )
    for note in backup.manifest.get("notes") or []:
        risks.append(Risk("backup_note", note))
    beside = False
    if target.dialect == "postgresql":
        blocked = (
            ["asked for (--in-place)"]
            if in_place
            else pg_beside.blockers(target, backup)
        )
        beside = not blocked
        connected = pg_beside.sessions(target) if beside else []
        if connected:
            risks.append(
                Risk(
                    "sessions_ended",
                    f"{len(connected)} other sessions are connected to "
                    f"{target.database} now; any still there at the swap are "
                    "ended: " + ", ".join(connected[:10]),
                )
            )

    def run(ctx: Context) -> dict[str, Any]:
        def progress(done: int) -> None:
            ctx.progress(
                done,
                backup.size,
                f"{done} of {backup.size} bytes restored",
                unit="bytes",
            )

        counts = loaders.load(
            target,
            backup,
            progress=throttled(progress, backup.size),
            stop=ctx.cancelled,
            log=lambda text: ctx.log(text, Severity.WARNING),
            note=ctx.log,
            beside=beside,
        )
        target.dispose()
        if counts is not None:
            ctx.results["row_counts"] = counts  # exact: the snapshot after uses them
        return {
            "backup_id": backup.id,
            "bytes": backup.size,
            "counted_before_commit": counts,
        }

    step = Step(
        STEP_RESTORE,
        f"replace {target.name} with backup {backup.id}",
        run,
        destructive=bool(now_state["tables"]),
        # PostgreSQL (psql -1) and SQLite (one backup step) are atomic.
        transactional=target.dialect != "mysql",
        estimate=estimate,
        not_previewable=_how(target.dialect, beside),
        detail={"backup_id": backup.id, "bytes": backup.size},
    )
    plan = Plan(
        "backup.restore",
        target.name,
        f"restore {target.name} from backup {backup.id}",
        [step],
        risks=risks,
        postconditions=[
            Postcondition(
                "row counts equal the backup's manifest (then the safety backup is "
                "unpinned)",
                lambda ctx: _check_counts(ctx, target, backup),
            )
        ],
        summary={
            "backup_id": backup.id,
            "backup": f"{backup.id} of {backup.target}, taken "
            f"{humanize.naturaltime(timedelta(seconds=age))} "
            f"({backup.created_at:%Y-%m-%d %H:%M} UTC), "
            f"{humanize.naturalsize(backup.size or 0, binary=True)}"
            + (f", label {backup.label!r}" if backup.label else ""),
            "verified": _verified_text(backup, verification),
            "revision_now": ", ".join(now_state["heads"]) or "none",
            "revision_in_backup": ", ".join(backup.manifest.get("alembic_heads") or [])
            or "none",
            "replaces": f"{len(backup.tables)} tables: {rows_now:,} rows now, "
            f"{rows_backup:,} in the backup",
            "tables": tables,
            "drops": ", ".join(
                f"{t['table']} ({t['rows_now']:,} rows)" for t in dropped
            )
            or "no table outside the backup",
            "backup_detail": {
                "id": backup.id,
                "target": backup.target,
                "created_at": backup.created_at.isoformat(),
                "age": round(age),
                "size": backup.size,
                "label": backup.label,
                "verification": verification.to_dict(),
            },
        },
        explain_failure=lambda ctx, failed, exc: explain_failure(
            ctx, failed, exc, target, into, beside
        ),
    )
    if target.dialect == "postgresql":
        plan.summary["method"] = (
            "beside: restored into a new database with parallel pg_restore, "
            "checked, then swapped in by renaming (the server needs room for a "
            "second copy meanwhile); reads go on, writes wait"
            if beside
            else "in place, in one transaction (not beside it and swapped in: "
            + "; ".join(blocked)
            + ")"
        )
    if into:
        plan.summary["into"] = target.display_url
    if now_state["tables"]:
        plan.safety_backup = safety_backup_step(
            target, f"before restoring backup {backup.id}"
        )
        plan.safety_backup.estimate = safety_estimate
    if "snapshot" in {f.name for f in fields(Plan)}:
        plan.snapshot = True  # type: ignore[attr-defined]
    return plan


def _verified_text(backup: Backup, verification: Verification) -> str:
    if (
        verification.checks
        and verification.checks[0]["check"] == "sha256"
        and backup.verified_at is not None
    ):
        ago = humanize.naturaltime(utcnow() - backup.verified_at)
        return f"yes: fully verified {ago}; checksum re-checked just now"
    return "yes: read in full just now"


def _not_in_backup(
    dialect: str, backup: Backup, tables: list[dict]
) -> tuple[list[dict], list[dict]]:
    """Tables the target has and the backup lacks: (dropped, left as they are).

    PostgreSQL drops the backup's schemas whole, so such a table in one of them
    goes too; SQLite replaces the whole file; mariadb-dump's SQL drops and
    re-creates only the tables it holds.
    """
    extra = [t for t in tables if t["rows_in_backup"] is None]
    for change in tables:
        change["after_restore"] = "from the backup"
    if dialect == "mysql":
        dropped: list[dict] = []
    elif dialect == "sqlite":
        dropped = extra
    else:
        schemas = pg_beside.replaced_schemas(backup)
        dropped = [
            t
            for t in extra
            if (t["table"].split(".", 1)[0] if "." in t["table"] else "public")
            in schemas
        ]
    for change in extra:
        change["after_restore"] = "dropped" if change in dropped else "left as is"
    return dropped, [t for t in extra if t not in dropped]


def _why_dropped(dialect: str) -> str:
    if dialect == "sqlite":
        return "the restore replaces the whole file"
    return "the restore drops and re-creates its schema"


def _how(dialect: str, beside: bool) -> str:
    if beside:
        return (
            "pg_restore fills a new database beside it, which replaces it by "
            "renaming once its row counts are right"
        )
    return {
        "postgresql": "the backup's schemas are dropped and re-created from "
        "the dump by pg_restore and psql, in one transaction",
        "mysql": "the mariadb client runs the dump's SQL",
        "sqlite": "the SQLite online backup API replaces the whole file",
    }[dialect]


def _table_changes(now: dict[str, int], backup: dict[str, int]) -> list[dict]:
    names = sorted(set(now) | set(backup))
    return [
        {"table": name, "rows_now": now.get(name), "rows_in_backup": backup.get(name)}
        for name in names
    ]


def _check_counts(ctx: Context, target: Target, backup: Backup) -> tuple[bool, str]:
    # PostgreSQL's restore counted inside its own transaction, before COMMIT.
    actual = (ctx.results.get(STEP_RESTORE) or {}).get("counted_before_commit")
    if actual is None:
        with target.engine().connect() as conn:
            actual = inspect.row_counts(conn, target.dialect)
    differences = compare_counts(backup.tables, actual)
    if differences:
        return False, "; ".join(differences)
    detail = f"{len(backup.tables)} tables, {sum(backup.tables.values())} rows"
    safety = ctx.results.get("safety_backup_id")
    if safety:
        catalog.set_pin(ctx.store, safety, False)
        detail += f"; safety backup {safety} unpinned"
    return True, detail


def explain_failure(
    ctx: Context,
    step: Step,
    exc: BaseException,
    target: Target,
    into: bool,
    beside: bool = False,
) -> dict[str, Any]:
    """What state the database is in, and how to get back."""
    safety = ctx.results.get("safety_backup_id")
    if step.name == STEP_SAFETY:
        return {
            "state": f"{target.name} was not changed: the safety backup failed "
            "before the restore began",
            "how_to_get_back": "nothing to undo; fix the cause and plan the "
            "restore again",
        }
    if beside:
        state = (
            "the restore went into a separate database, which was dropped "
            f"before any swap: {target.name} should be as it was before the restore"
        )
    elif target.dialect == "postgresql":
        state = (
            f"the restore ran in one transaction, which was rolled back: "
            f"{target.name} should be as it was before the restore"
        )
    elif target.dialect == "sqlite":
        state = (
            f"the SQLite backup API writes in one transaction: {target.name} "
            "should be as it was before the restore"
        )
    else:
        state = (
            f"the restore stopped part-way: some tables of {target.name} may "
            "hold the backup's rows, others their rows from before, and some "
            "may be missing"
        )
    report: dict[str, Any] = {"state": state}
    if safety:
        report["safety_backup"] = safety
        where = f"--into '{target.display_url}'" if into else f"--target {target.name}"
        report["how_to_get_back"] = (
            "restore the safety backup taken just before: "
            f"dbr backups restore {safety} " + where + " --yes"
        )
    else:
        report["how_to_get_back"] = (
            "no safety backup was taken (declined or the "
            "database was empty); restore another backup"
        )
    return report
