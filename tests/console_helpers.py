"""Shared pieces of the console's pilot tests: the demo workspace and a real run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from console.app import DbrConsole
from core.events import Severity
from core.executor import Outcome
from core.plans import Context, Plan, Step
from core.workspace import Workspace


def count_orders_plan(target: str, *, fail: bool = False) -> Plan:
    """A small real plan: it reads the shop's orders, and can fail on purpose."""

    def count(ctx: Context) -> dict[str, Any]:
        with ctx.target.engine().connect() as conn:
            rows = conn.execute(sa.text("select count(*) from orders")).scalar_one()
        ctx.log(f"{rows} orders counted")
        if fail:
            raise RuntimeError("the order count does not add up")
        return {"orders": rows}

    return Plan(
        kind="check.orders",
        target=target,
        title="count the orders",
        steps=[
            Step(
                "count orders",
                "count the rows of orders",
                count,
                sql="select count(*) from orders",
            )
        ],
    )


def run_plan(ws: Workspace, plan: Plan) -> Outcome:
    return ws.executor.run(plan, ws.target(plan.target), confirmed=True)


def warn(
    ws: Workspace,
    target: str,
    message: str,
    severity: Severity = Severity.WARNING,
    kind: str = "health.degraded",
    **data: Any,
) -> None:
    ws.bus.emit(kind, message, severity=severity, target=target, data=data)


async def settle(pilot: Any, until: Callable[[], bool], tries: int = 100) -> None:
    """Wait, without a clock in the assertion, until the app shows what we expect."""
    for _ in range(tries):
        await pilot.pause(0.05)
        if until():
            return
    raise AssertionError("the console never reached the expected state")


def open_app(config: Path, **kwargs: Any) -> DbrConsole:
    return DbrConsole(Workspace.open(config), **kwargs)


def screen_text(app: DbrConsole) -> str:
    """The characters on screen, as a person reads them (no colour)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
