"""The incident timeline: a window of the journal, alerts and health, as Markdown.

A pure function over what the journal returned; the console and the CLI gather the
data, this module only words it, so the postmortem reads the same from either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]


def build(
    target: str,
    since: datetime,
    until: datetime,
    *,
    operations: Sequence[Row] = (),
    events: Sequence[Row] = (),
    samples: Sequence[Row] = (),
    generated: datetime | None = None,
) -> str:
    """Markdown for one target's window: summary, timeline, each operation's steps.

    operations: journal operations (with "steps" when known); events: journal
    events; samples: health samples with at, score, threshold, healthy, conclusive.
    Rows outside [since, until] are left out.
    """
    inside = _window(since, until)
    operations = sorted(
        (o for o in operations if inside(o["started_at"])),
        key=lambda o: _at(o["started_at"]),
    )
    events = sorted((e for e in events if inside(e["at"])), key=lambda e: _at(e["at"]))
    samples = sorted(
        (s for s in samples if inside(s["at"])), key=lambda s: _at(s["at"])
    )
    lines = [
        f"# Incident timeline: {target}",
        "",
        f"Window: {_stamp(since)} to {_stamp(until)} (UTC)  ",
        f"Generated: {_stamp(generated or datetime.now(UTC))} by dbr",
        "",
    ]
    lines += _summary(operations, events, samples)
    lines += [
        "",
        "## Timeline",
        "",
        "| time (UTC) | severity | what |",
        "|---|---|---|",
    ]
    entries = [(_at(e["at"]), e.get("severity", "info"), e["message"]) for e in events]
    entries += [(at, severity, text) for at, severity, text in _health_changes(samples)]
    if not entries:
        lines.append("| - | - | nothing was recorded in this window |")
    for at, severity, text in sorted(entries, key=lambda e: e[0]):
        lines.append(f"| {at:%H:%M:%S} | {severity} | {_cell(text)} |")
    if operations:
        lines += ["", "## Operations"]
        for operation in operations:
            lines += [""] + _operation(operation)
    return "\n".join(lines) + "\n"


def _summary(
    operations: Sequence[Row], events: Sequence[Row], samples: Sequence[Row]
) -> list[str]:
    lines = ["## Summary", ""]
    if operations:
        outcomes: dict[str, int] = {}
        for operation in operations:
            outcomes[operation["status"]] = outcomes.get(operation["status"], 0) + 1
        counted = ", ".join(f"{n} {s}" for s, n in sorted(outcomes.items()))
        lines.append(f"- Operations: {len(operations)} ({counted})")
    else:
        lines.append("- Operations: none")
    severities = {"critical": 0, "warning": 0}
    for event in events:
        if event.get("severity") in severities:
            severities[event["severity"]] += 1
    lines.append(
        f"- Alerts: {severities['critical']} critical, "
        f"{severities['warning']} warning, {len(events)} events in all"
    )
    scored = [s for s in samples if s.get("conclusive") and s.get("score") is not None]
    if scored:
        low = min(scored, key=lambda s: s["score"])
        last = scored[-1]
        lines.append(
            f"- Health: lowest score {low['score']:.0f}% at "
            f"{_at(low['at']):%H:%M:%S} (threshold {low['threshold']:g}); "
            f"last {last['score']:.0f}% at {_at(last['at']):%H:%M:%S}, "
            f"{'healthy' if _healthy(last) else 'UNHEALTHY'}"
        )
    else:
        lines.append("- Health: no conclusive sample in this window")
    return lines


def _health_changes(samples: Sequence[Row]) -> list[tuple[datetime, str, str]]:
    """Only the samples where the target crossed its threshold, either way."""
    changes = []
    previous: bool | None = None
    for sample in samples:
        if not sample.get("conclusive") or sample.get("score") is None:
            continue
        healthy = _healthy(sample)
        if healthy != previous:
            words = "healthy again" if healthy else "UNHEALTHY"
            severity = "info" if healthy else "warning"
            if previous is None:
                words = "healthy" if healthy else "UNHEALTHY"
            changes.append(
                (
                    _at(sample["at"]),
                    severity,
                    (
                        f"health {words}: score {sample['score']:.0f}% "
                        f"(threshold {sample['threshold']:g})"
                    ),
                )
            )
            previous = healthy
    return changes


def _operation(operation: Row) -> list[str]:
    took = operation.get("duration")
    lines = [
        f"### {operation['title']} ({operation['id']}): {operation['status']}",
        "",
        f"- kind: {operation['kind']}",
        f"- by: {operation.get('user')}@{operation.get('host')}"
        + (f" from {operation['ssh_client']}" if operation.get("ssh_client") else ""),
        f"- started: {_stamp(_at(operation['started_at']))}"
        + (f", took {took:.1f} s" if took is not None else ""),
    ]
    if operation.get("error"):
        lines.append(f"- error: {operation['error']}")
    options = operation.get("options") or {}
    if options.get("safety_backup_declined"):
        lines.append("- the safety backup was declined by the operator")
    for number, step in enumerate(operation.get("steps") or [], start=1):
        took = step.get("duration")
        lines.append(
            f"  {number}. {step['name']}: {step['status']}"
            + (f" ({took:.1f} s)" if took is not None else "")
            + (f", {step['error']}" if step.get("error") else "")
        )
    result = operation.get("result") or {}
    for check in result.get("postconditions") or []:
        lines.append(
            f"- check {'passed' if check.get('ok') else 'FAILED'}: "
            f"{check.get('check')} ({check.get('detail')})"
        )
    return lines


def _healthy(sample: Row) -> bool:
    if sample.get("healthy") is not None:
        return bool(sample["healthy"])
    return sample["score"] >= sample["threshold"]


def _window(since: datetime, until: datetime) -> Any:
    return lambda value: since <= _at(value) <= until


def _at(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
