"""The journal (the rollback log): operations, their steps, events, and target locks.

Append-only from the operator's point of view: rows are added and an operation's own
row is completed as it ends; nothing is ever edited after the fact or deleted.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.errors import DbrError, LockHeld
from core.events import HEALTH_SAMPLED, STEP_PROGRESS, Event
from core.secrets import redact, redact_value
from core.state import (
    Store,
    events,
    locks,
    new_id,
    operations,
    pid_alive,
    steps,
    utcnow,
    who,
)

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"  # shown for a running operation whose process is gone
REMOTE_LOCK_STALE_AFTER = timedelta(minutes=30)
NOT_JOURNALED = {HEALTH_SAMPLED}  # health samples have a table of their own
PROGRESS_EVERY = 2.0  # seconds between journaled progress events of one operation


class Journal:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self._progress_at: dict[str | None, float] = {}

    # -- operations -------------------------------------------------------------

    def begin(
        self,
        kind: str,
        target: str,
        title: str,
        *,
        plan: dict | None = None,
        options: dict | None = None,
        operation_id: str | None = None,
        parent_id: str | None = None,
    ) -> str:
        operation_id = operation_id or new_id()
        row = {
            "id": operation_id,
            "kind": kind,
            "target": target,
            "title": redact(title),
            "status": RUNNING,
            "plan": redact_value(plan),
            "options": redact_value(options or {}),
            "parent_id": parent_id,
            "started_at": utcnow(),
            **who(),
        }
        with self.engine.begin() as conn:
            conn.execute(operations.insert().values(row))
        return operation_id

    def finish(
        self,
        operation_id: str,
        status: str,
        *,
        error: str | None = None,
        result: dict | None = None,
    ) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            started = conn.execute(
                sa.select(operations.c.started_at).where(
                    operations.c.id == operation_id
                )
            ).scalar_one()
            conn.execute(
                operations.update()
                .where(operations.c.id == operation_id)
                .values(
                    status=status,
                    finished_at=now,
                    duration=(now - started).total_seconds(),
                    error=redact(error) if error else None,
                    result=redact_value(result) if result is not None else None,
                )
            )

    def step_started(
        self, operation_id: str, position: int, name: str, description: str = ""
    ) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                steps.insert().values(
                    operation_id=operation_id,
                    position=position,
                    name=name,
                    description=redact(description),
                    status=RUNNING,
                    started_at=utcnow(),
                )
            ).inserted_primary_key[0]

    def step_finished(
        self,
        step_id: int,
        status: str,
        *,
        detail: dict | None = None,
        error: str | None = None,
    ) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            started = conn.execute(
                sa.select(steps.c.started_at).where(steps.c.id == step_id)
            ).scalar_one()
            conn.execute(
                steps.update()
                .where(steps.c.id == step_id)
                .values(
                    status=status,
                    finished_at=now,
                    duration=(now - started).total_seconds(),
                    detail=redact_value(detail),
                    error=redact(error) if error else None,
                )
            )

    def step_skipped(self, operation_id: str, position: int, name: str) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                steps.insert().values(
                    operation_id=operation_id,
                    position=position,
                    name=name,
                    status="skipped",
                    started_at=now,
                    finished_at=now,
                    duration=0.0,
                )
            )

    def operations(
        self,
        target: str | None = None,
        *,
        limit: int = 50,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        query = sa.select(operations).order_by(operations.c.started_at.desc())
        if status:
            query = query.where(operations.c.status == status)
        if target:
            query = query.where(operations.c.target == target)
        if kind:
            query = query.where(operations.c.kind.like(kind.replace("*", "%")))
        if since:
            query = query.where(operations.c.started_at >= since)
        if until:
            query = query.where(operations.c.started_at <= until)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_operation(row) for row in conn.execute(query).mappings()]

    def operation(self, operation_id: str) -> dict[str, Any]:
        """One operation with its steps and events; the id may be a unique prefix."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(operations)
                    .where(operations.c.id.like(f"{operation_id}%"))
                    .limit(2)
                )
                .mappings()
                .all()
            )
            if len(rows) != 1:
                problem = (
                    "matches several operations" if rows else "is not in the journal"
                )
                raise DbrError(
                    f"operation {operation_id!r} {problem}",
                    hint="see `dbr log` for the ids",
                )
            entry = _operation(rows[0])
            entry["steps"] = [
                _times(dict(row))
                for row in conn.execute(
                    sa.select(steps)
                    .where(steps.c.operation_id == entry["id"])
                    .order_by(steps.c.position, steps.c.id)
                ).mappings()
            ]
            entry["events"] = [
                _times(dict(row))
                for row in conn.execute(
                    sa.select(events)
                    .where(events.c.operation_id == entry["id"])
                    .order_by(events.c.id)
                ).mappings()
            ]
        return entry

    def step_durations(self, target: str, name: str, *, limit: int = 20) -> list[float]:
        """Durations of past successful steps of this name, newest first."""
        query = (
            sa.select(steps.c.duration)
            .join(operations, operations.c.id == steps.c.operation_id)
            .where(
                operations.c.target == target,
                steps.c.name == name,
                steps.c.status == SUCCEEDED,
            )
            .order_by(steps.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query) if row[0] is not None]

    def estimate(self, target: str, name: str) -> float | None:
        """The mean duration of this step in past runs on this target, if any."""
        past = self.step_durations(target, name)
        return sum(past) / len(past) if past else None

    # -- events -----------------------------------------------------------------

    def record(self, event: Event) -> None:
        """A bus subscriber: keeps every event worth reading later."""
        if event.kind in NOT_JOURNALED or not self._progress_due(event):
            return
        row = event.to_dict()
        with self.engine.begin() as conn:
            conn.execute(
                events.insert().values(
                    at=event.at,
                    kind=row["kind"],
                    severity=row["severity"],
                    target=row["target"],
                    operation_id=row["operation_id"],
                    message=row["message"],
                    data=row["data"],
                )
            )

    def _progress_due(self, event: Event) -> bool:
        """Progress is kept now and then, so other processes can follow a long step."""
        if event.kind != STEP_PROGRESS:
            return True
        done, total = event.data.get("done"), event.data.get("total")
        now = time.monotonic()
        last = self._progress_at.get(event.operation_id)
        if (
            last is not None
            and now - last < PROGRESS_EVERY
            and not (total and done is not None and done >= total)
        ):
            return False
        self._progress_at[event.operation_id] = now
        return True

    def events(
        self,
        target: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: tuple[str, ...] = (),
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        query = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        if target:
            query = query.where(events.c.target == target)
        if since:
            query = query.where(events.c.at >= since)
        if until:
            query = query.where(events.c.at <= until)
        if kinds:
            query = query.where(events.c.kind.in_(kinds))
        with self.engine.connect() as conn:
            return [_times(dict(row)) for row in conn.execute(query).mappings()]

    # -- locks ------------------------------------------------------------------

    def acquire_lock(
        self, target: str, operation_id: str, kind: str, *, break_stale: bool = False
    ) -> None:
        """Take the target's operation lock or raise LockHeld naming its holder."""
        me = who()
        now = utcnow()
        row = {
            "target": target,
            "operation_id": operation_id,
            "kind": kind,
            "user": me["user"],
            "host": me["host"],
            "pid": me["pid"],
            "acquired_at": now,
            "heartbeat_at": now,
        }
        for _ in range(2):
            try:
                with self.engine.begin() as conn:
                    conn.execute(locks.insert().values(row))
                return
            except sa.exc.IntegrityError:
                holder = self.lock_holder(target)
                if holder is None:
                    continue
                if not (holder["stale"] and break_stale):
                    raise LockHeld(target, holder, stale=holder["stale"]) from None
                self._break(target, holder)
        raise LockHeld(target, self.lock_holder(target) or {})

    def heartbeat(self, target: str, operation_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                locks.update()
                .where(locks.c.target == target, locks.c.operation_id == operation_id)
                .values(heartbeat_at=utcnow())
            )

    def release_lock(self, target: str, operation_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                locks.delete().where(
                    locks.c.target == target, locks.c.operation_id == operation_id
                )
            )

    def lock_holder(self, target: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(locks).where(locks.c.target == target))
                .mappings()
                .first()
            )
        if row is None:
            return None
        holder = _times(dict(row))
        holder["stale"] = _is_stale(row)
        return holder

    def locks(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(locks).order_by(locks.c.target)).mappings()
            return [_times(dict(row)) | {"stale": _is_stale(row)} for row in rows]

    def _break(self, target: str, holder: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                locks.delete().where(
                    locks.c.target == target,
                    locks.c.operation_id == holder["operation_id"],
                )
            )
        self.record(
            Event(
                kind="lock.broken",
                target=target,
                operation_id=holder["operation_id"],
                message=(
                    f"stale lock on {target} broken; it was held by "
                    f"{holder['user']}@{holder['host']} pid {holder['pid']}"
                ),
                data={"holder": {k: v for k, v in holder.items() if k != "stale"}},
            )
        )


def _is_stale(row: Any) -> bool:
    """A lock is stale when its process is gone (same host) or silent for too long."""
    if row["host"] == socket.gethostname():
        return not pid_alive(row["pid"])
    return utcnow() - row["heartbeat_at"] > REMOTE_LOCK_STALE_AFTER


def _operation(row: Any) -> dict[str, Any]:
    entry = _times(dict(row))
    if (
        entry["status"] == RUNNING
        and entry["host"] == socket.gethostname()
        and not pid_alive(entry["pid"])
    ):
        entry["status"] = INTERRUPTED
    return entry


def _times(row: dict[str, Any]) -> dict[str, Any]:
    """ISO-8601 UTC strings for every time in a row, as JSON output wants."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
