"""A plan as the operator previews it: steps with SQL, risks, safety backup, time."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text

from console.format import count, seconds, size


def render_plan(plan: Any, *, safety_backup: bool = True) -> RenderableType:
    """Everything the CLI's preview says, in the console's words and layout."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(f"{plan.title}\n", style="bold")
    head.append(f"target {plan.target} · {plan.kind} · ")
    head.append(
        "DESTROYS DATA" if plan.destructive else "does not destroy data",
        style="bold red" if plan.destructive else "green",
    )
    if not plan.transactional:
        head.append(" · NOT transactional: a failed step can stay half-done")
    elif len(plan.steps) > 1:
        head.append(" · each step all-or-nothing")
    else:
        head.append(" · all-or-nothing")
    estimate = plan.estimate
    head.append(
        f"\nestimated time: {seconds(estimate)}"
        if estimate is not None
        else "\nestimated time: unknown (no past runs to go by)"
    )
    for key, value in plan.summary.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            head.append(f"\n{key.replace('_', ' ')}: {value}")
        elif isinstance(value, dict) and value and len(value) <= 40:
            shown = {k: v for k, v in value.items() if _plain(v)}
            if shown:
                head.append(f"\n{key.replace('_', ' ')}:")
            for name, item in shown.items():
                head.append(f"\n  {name.replace('_', ' ')}: {_words(item)}")
        elif (
            isinstance(value, list)
            and value
            and len(value) <= 40
            and all(isinstance(item, dict) and _plain(item) for item in value)
        ):
            head.append(f"\n{key.replace('_', ' ')}:")
            for item in value:
                head.append(f"\n  {_words(item)}")
    if plan.safety_backup is not None and plan.destructive:
        head.append("\nsafety backup first: ")
        head.append(
            "YES, " + plan.safety_backup.description
            if safety_backup
            else "DECLINED (the journal will record it)",
            style="green" if safety_backup else "bold red",
        )
    parts.append(head)
    parts.append(Text(f"\nRisks ({len(plan.risks)})", style="bold"))
    if not plan.risks:
        parts.append(Text(" none found"))
    for risk in plan.risks:
        line = Text(" ")
        line.append(
            "CRITICAL" if risk.severity == "critical" else "warning",
            style="bold red" if risk.severity == "critical" else "yellow",
        )
        line.append(f" {risk.message}")
        numbers = []
        if risk.rows is not None:
            numbers.append(f"{count(risk.rows)} rows")
        if risk.bytes is not None:
            numbers.append(size(risk.bytes))
        if numbers and not any(n.split()[0] in risk.message for n in numbers):
            line.append(f" ({', '.join(numbers)})")
        parts.append(line)
    parts.append(Text(f"\nSteps ({len(plan.steps)})", style="bold"))
    for number, step in enumerate(plan.steps, start=1):
        line = Text(f" {number}. {step.name}", style="bold")
        if step.destructive:
            line.append("  [DESTRUCTIVE]", style="bold red")
        if not step.transactional:
            line.append("  [no transaction]", style="yellow")
        if step.estimate is not None:
            line.append(f"  ~{seconds(step.estimate)}", style="dim")
        parts.append(line)
        if step.description:
            parts.append(Text(f"    {step.description}"))
        if step.sql:
            parts.append(
                Syntax(
                    step.sql.strip(),
                    "sql",
                    theme="ansi_dark",
                    word_wrap=True,
                    padding=(0, 0, 0, 4),
                    background_color="default",
                )
            )
        elif step.not_previewable:
            parts.append(
                Text(f"    SQL not previewable: {step.not_previewable}", style="dim")
            )
    if plan.postconditions:
        parts.append(Text("\nAfterwards dbr checks", style="bold"))
        for condition in plan.postconditions:
            parts.append(Text(f" - {condition.description}"))
    return Group(*parts)


def _words(value: Any) -> str:
    """A summary's nested value as plain words: 'now 0, backup 2,240'."""
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_words(v)}" for k, v in value.items())
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _plain(value: Any) -> bool:
    """A scalar, or a flat dict of scalars: what reads well in a preview."""
    if isinstance(value, dict):
        return all(not isinstance(v, (dict, list)) for v in value.values())
    return not isinstance(value, list)
