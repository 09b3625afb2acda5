"""Retention: which backups a policy keeps, and why. A pure function, no I/O.

Rules (as operators know them from restic and borg): keep_last N keeps the N newest
backups; keep_hourly/daily/weekly/monthly/yearly N keep the newest backup of each of
the N most recent periods that have one; keep_within keeps everything younger than
a duration. Only complete backups count toward a rule. Whatever the rules say, a
pinned backup, the newest verified backup and a backup that a running operation
depends on are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from core.config import RetentionPolicy
from core.errors import ConfigError

KEEP = "keep"
REMOVE = "remove"


class Candidate(Protocol):
    id: str
    created_at: datetime
    size: int | None
    pinned: bool

    @property
    def complete(self) -> bool: ...

    @property
    def verified(self) -> bool: ...


@dataclass
class Verdict:
    id: str
    action: str  # keep or remove
    reasons: list[str] = field(default_factory=list)
    size: int = 0
    created_at: datetime | None = None
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "action": self.action,
            "reasons": list(self.reasons),
            "size": self.size,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "frees": self.size if self.action == REMOVE else 0,
        }


# Each period rule: its policy field, the words for one period, and its bucket key.
PERIODS: tuple[tuple[str, str, Callable[[datetime], str]], ...] = (
    ("keep_hourly", "hour", lambda t: t.strftime("%Y-%m-%d %H:00")),
    ("keep_daily", "day", lambda t: t.strftime("%Y-%m-%d")),
    ("keep_weekly", "week", lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
    ("keep_monthly", "month", lambda t: t.strftime("%Y-%m")),
    ("keep_yearly", "year", lambda t: t.strftime("%Y")),
)


def evaluate(
    backups: Iterable[Candidate],
    policy: RetentionPolicy | None,
    now: datetime,
    *,
    in_use: dict[str, str] | None = None,
    target: str | None = None,
) -> list[Verdict]:
    """A verdict for every backup, newest first.

    in_use maps a backup id to the running operation that depends on it.
    Raises ConfigError for an empty policy: pruning by no rule would keep nothing.
    """
    if policy is None or policy.empty:
        where = f"[targets.{target}.retention]" if target else "the retention policy"
        raise ConfigError(
            "no retention policy" + (f" for {target}" if target else ""),
            cause=f"{where} sets no keep_* rule, so every backup would be removed",
            hint=f"add {where} with keep_last, keep_daily, ... to dbr.toml",
        )
    in_use = in_use or {}
    # One sort, then each rule walks the newest backups only as far as it keeps:
    # O(n log n) overall however many backups the catalog holds.
    ordered = sorted(backups, key=lambda b: (b.created_at, b.id), reverse=True)
    reasons: dict[str, list[str]] = {}
    complete = [b for b in ordered if b.complete]

    for position, backup in enumerate(complete[: policy.keep_last], start=1):
        reasons.setdefault(backup.id, []).append(
            f"keep_last: {position} of the {policy.keep_last} newest"
        )
    if policy.keep_within:
        horizon = now - timedelta(seconds=policy.keep_within)
        young = f"keep_within: younger than {_duration(policy.keep_within)}"
        for backup in complete:
            if backup.created_at < horizon:
                break  # newest first: every later one is older still
            reasons.setdefault(backup.id, []).append(young)
    for rule, unit, bucket in PERIODS:
        wanted = getattr(policy, rule)
        for rank, (period, backup) in enumerate(
            _newest_per_period(complete, bucket, wanted)
        ):
            reasons.setdefault(backup.id, []).append(
                f"{rule}: newest of {unit} {period} ({rank + 1} of {wanted})"
            )

    newest_verified = next((b for b in complete if b.verified), None)
    verdicts = []
    for backup in ordered:
        why = reasons.get(backup.id, [])
        if backup.pinned:
            why.insert(0, "pinned")
        if newest_verified is not None and backup.id == newest_verified.id:
            why.insert(0, "newest verified backup")
        if backup.id in in_use:
            why.insert(0, f"used by running operation {in_use[backup.id]}")
        action = KEEP if why else REMOVE
        if not why:
            why.append(
                "kept by no rule"
                if backup.complete
                else "incomplete: counts toward no rule"
            )
        verdicts.append(
            Verdict(backup.id, action, why, backup.size or 0, backup.created_at, target)
        )
    return verdicts


def _newest_per_period(
    backups: Sequence[Candidate], bucket: Callable[[datetime], str], wanted: int
) -> list[tuple[str, Candidate]]:
    """(period, its newest backup) for the `wanted` most recent periods, newest first.

    Periods rank by their newest backup; once `wanted` periods are seen, older
    backups can only fall into those (not their newest) or rank beyond `wanted`.
    """
    seen: dict[str, Candidate] = {}
    if wanted <= 0:
        return []
    for backup in backups:  # newest first, so the first of a period is its newest
        seen.setdefault(bucket(backup.created_at), backup)
        if len(seen) >= wanted:
            break
    return list(seen.items())


def bytes_freed(verdicts: Iterable[Verdict]) -> int:
    return sum(v.size for v in verdicts if v.action == REMOVE)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
