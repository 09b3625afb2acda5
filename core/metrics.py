"""Numbers about rollback work, from the journal: counts, success rate, durations."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from core.journal import FAILED, SUCCEEDED, Journal


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def summary(
    journal: Journal, target: str | None = None, since: datetime | None = None
) -> dict[str, Any]:
    """Operations by kind and outcome, success rate, mean and p95, last rollback."""
    entries = journal.operations(target, limit=0, since=since)
    by_kind: dict[str, Counter] = defaultdict(Counter)
    durations: dict[str, list[float]] = defaultdict(list)
    for entry in entries:
        by_kind[entry["kind"]][entry["status"]] += 1
        if entry["duration"] is not None and entry["status"] == SUCCEEDED:
            durations[entry["kind"]].append(entry["duration"])
    finished = [e for e in entries if e["status"] in (SUCCEEDED, FAILED)]
    succeeded = sum(1 for e in finished if e["status"] == SUCCEEDED)
    all_durations = [d for values in durations.values() for d in values]
    rollbacks = [e for e in entries if _is_rollback(e["kind"])]
    kinds = {
        kind: {
            "outcomes": dict(counts),
            "total": sum(counts.values()),
            "mean_duration": _mean(durations[kind]),
            "p95_duration": percentile(durations[kind], 0.95),
        }
        for kind, counts in sorted(by_kind.items())
    }
    return {
        "operations": len(entries),
        "by_kind": kinds,
        "success_rate": succeeded / len(finished) if finished else None,
        "mean_duration": _mean(all_durations),
        "p95_duration": percentile(all_durations, 0.95),
        "last_rollback": _brief(rollbacks[0]) if rollbacks else None,
        "trigger_to_recovery": trigger_to_recovery(entries),
    }


def trigger_to_recovery(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds from a trigger firing (or a manual rollback starting) to recovery.

    Counts the rollbacks whose health re-measurement ended "recovered" (see
    core.rollback); entries are journal operations, newest first.
    """
    times = []
    for entry in entries:
        if not entry["kind"].startswith("rollback."):
            continue
        recovery = ((entry.get("result") or {}).get("results") or {}).get("recovery")
        if not recovery or not recovery.get("recovered_at"):
            continue
        began = (entry.get("options") or {}).get("triggered_at") or entry["started_at"]
        took = (
            datetime.fromisoformat(recovery["recovered_at"])
            - datetime.fromisoformat(began)
        ).total_seconds()
        times.append(max(0.0, took))
    return {
        "count": len(times),
        "mean": _mean(times),
        "p95": percentile(times, 0.95),
        "last": times[0] if times else None,
    }


def _is_rollback(kind: str) -> bool:
    return kind.startswith(
        ("rollback.", "backup.restore", "migration.downgrade", "transaction.undo")
    )


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _brief(entry: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "kind",
        "target",
        "status",
        "started_at",
        "finished_at",
        "duration",
        "user",
    )
    return {k: entry[k] for k in keys}
