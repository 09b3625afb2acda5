"""How the console words numbers and states; words first, colour only as a help."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import humanize


def ago(value: str | datetime | None) -> str:
    if not value:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return humanize.naturaltime(datetime.now(UTC) - moment)


def clock(value: str | datetime | None) -> str:
    if not value:
        return "--:--:--"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone().strftime("%H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 90:
        return f"{value:.1f} s"
    return humanize.precisedelta(value, minimum_unit="seconds", format="%0.0f")


def size(value: int | None) -> str:
    return "-" if value is None else humanize.naturalsize(value, binary=True)


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def score_words(
    score: float | None,
    threshold: float | None,
    healthy: bool | None,
    conclusive: bool = True,
) -> tuple[str, str]:
    """'78% < 80 UNHEALTHY' and a tone; the words alone tell the state."""
    if score is None or not conclusive:
        return ("score unknown (no conclusive sample)", "warn")
    limit = f"{threshold:g}" if threshold is not None else "?"
    if healthy is False or (threshold is not None and score < threshold):
        return (f"{score:.0f}% < {limit} UNHEALTHY", "bad")
    return (f"{score:.0f}% >= {limit} healthy", "good")


STATUS_MARKS = {
    "succeeded": "✓ succeeded",
    "failed": "✗ FAILED",
    "cancelled": "■ cancelled",
    "running": "▶ running",
    "interrupted": "! INTERRUPTED",
    "skipped": "- skipped",
    "pending": "· pending",
}
STATUS_TONES = {
    "succeeded": "good",
    "failed": "bad",
    "interrupted": "bad",
    "cancelled": "warn",
    "running": "warn",
    "skipped": "dim",
    "pending": "dim",
}


def status(value: str) -> tuple[str, str]:
    return STATUS_MARKS.get(value, value), STATUS_TONES.get(value, "")


def short(value: Any, width: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
