"""The health score: a weighted percentage of passing checks, and why it is not 100."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.health.checks import CheckResult


@dataclass
class Score:
    score: float | None  # None when nothing could be measured
    threshold: float
    healthy: bool
    conclusive: bool
    explanation: list[str] = field(default_factory=list)
    lowered_by: list[dict[str, Any]] = field(default_factory=list)


def compute(results: list[CheckResult], threshold: float) -> Score:
    """Score the checks of one sample against the threshold, with the reasons.

    A skipped check (not measured: the user lacks the privilege to run it) is
    neither passing nor failing and is left out of the score. A failing required
    check caps the score just below the threshold, so the
    target is unhealthy whatever else passes. A sample in which no check reached a
    verdict (the server refused every connection, every check timed out) is
    inconclusive: its score is unknown and it is never healthy.
    """
    conclusive = any(r.ran for r in results)
    if not conclusive:
        reason = results[0].error if results else "no checks are configured"
        return Score(
            None,
            threshold,
            False,
            False,
            [f"inconclusive: no check could run ({reason})"],
        )
    skipped = [r for r in results if r.skipped]
    results = [r for r in results if not r.skipped]
    total = sum(r.weight for r in results)
    passed = sum(r.weight for r in results if r.ok)
    raw = 100.0 if total == 0 else 100.0 * passed / total
    lowered = []
    for r in results:
        if r.ok:
            continue
        points = 0.0 if total == 0 else 100.0 * r.weight / total
        lowered.append(
            {
                "check": r.name,
                "points": round(points, 1),
                "value": r.value,
                "status": r.status,
                "required": r.required,
                "detail": r.detail or r.error or "",
            }
        )
    lowered.sort(key=lambda item: -item["points"])
    explanation = [
        f"-{item['points']:g} {item['check']}"
        + (" (required)" if item["required"] else "")
        + (f" [{item['status']}]" if item["status"] != "failing" else "")
        + f": {item['detail']}"
        for item in lowered
    ]
    score = raw
    required = [item["check"] for item in lowered if item["required"]]
    if required and score >= threshold:
        score = max(0.0, threshold - 1.0)
        explanation.append(
            f"capped at {score:g} (below the threshold {threshold:g}) "
            f"because required check(s) failed: {', '.join(required)}"
        )
    score = round(score, 1)
    healthy = score >= threshold and not required
    if not lowered:
        explanation.append(f"all {len(results)} checks pass")
    explanation += [
        f"left out of the score: {r.name}: {r.error or 'not measured'}" for r in skipped
    ]
    return Score(score, threshold, healthy, True, explanation, lowered)
