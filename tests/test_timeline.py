"""core.timeline: the incident timeline as Markdown, from journal rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.timeline import build

T0 = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def sample(minutes: float, score: float | None, conclusive: bool = True) -> dict:
    return {
        "at": at(minutes),
        "score": score,
        "threshold": 80.0,
        "healthy": None if score is None else score >= 80,
        "conclusive": conclusive,
    }


def test_window_summary_crossings_and_operations() -> None:
    operations = [
        {
            "id": "abc123",
            "title": "downgrade shop to 60e91c",
            "kind": "migration.downgrade",
            "status": "succeeded",
            "started_at": at(12),
            "duration": 4.2,
            "user": "ana",
            "host": "bastion",
            "ssh_client": "10.0.0.9",
            "error": None,
            "options": {"safety_backup_declined": True},
            "steps": [
                {
                    "name": "downgrade 70fa42",
                    "status": "succeeded",
                    "duration": 4.0,
                    "error": None,
                }
            ],
            "result": {
                "postconditions": [
                    {
                        "check": "the version table holds 60e91c",
                        "ok": True,
                        "detail": "60e91c",
                    }
                ]
            },
        },
        {
            "id": "old",
            "title": "before the window",
            "kind": "backup.create",
            "status": "succeeded",
            "started_at": at(-90),
            "duration": 1.0,
        },
    ]
    events = [
        {"at": at(10), "severity": "warning", "message": "health degraded | orders"},
        {"at": at(11), "severity": "critical", "message": "trigger fired"},
        {"at": at(200), "severity": "critical", "message": "after the window"},
    ]
    samples = [
        sample(5, 95),
        sample(9, 55),
        sample(10, None, conclusive=False),
        sample(11, 42),
        sample(20, 90),
    ]
    text = build(
        "shop",
        T0,
        T0 + timedelta(hours=1),
        operations=operations,
        events=events,
        samples=samples,
        generated=T0,
    )

    assert text.startswith("# Incident timeline: shop\n")
    assert "- Operations: 1 (1 succeeded)" in text
    assert "- Alerts: 1 critical, 1 warning, 2 events in all" in text
    assert "lowest score 42% at 14:11:00 (threshold 80)" in text
    # Only the crossings of the threshold, not every sample.
    assert "| 14:05:00 | info | health healthy: score 95% (threshold 80) |" in text
    assert "| 14:09:00 | warning | health UNHEALTHY: score 55%" in text
    assert "health healthy again: score 90%" in text
    assert "score 42%" not in text.split("## Timeline")[1].split("## Operations")[0]
    assert "health degraded \\| orders" in text  # a pipe cannot break the table
    assert "after the window" not in text and "before the window" not in text
    assert "### downgrade shop to 60e91c (abc123): succeeded" in text
    assert "- by: ana@bastion from 10.0.0.9" in text
    assert "- the safety backup was declined by the operator" in text
    assert "  1. downgrade 70fa42: succeeded (4.0 s)" in text
    assert "- check passed: the version table holds 60e91c (60e91c)" in text


def test_an_empty_window_says_so() -> None:
    text = build("shop", T0, T0 + timedelta(minutes=30), generated=T0)
    assert "- Operations: none" in text
    assert "- Health: no conclusive sample in this window" in text
    assert "nothing was recorded in this window" in text
    assert "## Operations" not in text
