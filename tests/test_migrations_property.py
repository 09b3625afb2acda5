"""Over random revision graphs: the plan's predicted end state is the state reached,
and a downgrade followed by an upgrade returns to the same heads."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core import migrations
from core.errors import ConfigError
from core.events import Bus
from core.executor import Executor
from core.journal import Journal
from core.migrations.history import applied_revisions
from core.state import Store
from tests.migrations_helpers import (
    Rev,
    alembic_upgrade,
    create_table,
    heads,
    tables,
    target_for,
    write_project,
)


@st.composite
def graphs(draw: st.DrawFn) -> list[Rev]:
    """Revisions r0..rN: each a new base (perhaps depending on an earlier
    revision), a child of one revision, or a merge of two tips."""
    count = draw(st.integers(min_value=2, max_value=7))
    revisions: list[Rev] = []
    tips: list[str] = []  # revisions with no child yet
    for number in range(count):
        rev_id = f"r{number}"
        shape = draw(st.sampled_from(["child", "child", "base", "merge"]))
        if number == 0 or shape == "base":
            down = None
        elif shape == "merge" and len(tips) >= 2:
            pair = draw(
                st.lists(st.sampled_from(tips), min_size=2, max_size=2, unique=True)
            )
            down = tuple(sorted(pair))
        else:
            down = draw(st.sampled_from([r.id for r in revisions if not r.depends_on]))
        depends: tuple[str, ...] = ()
        if down is None and revisions and draw(st.booleans()):
            depends = (draw(st.sampled_from([r.id for r in revisions])),)
        parents = [down] if isinstance(down, str) else list(down or ())
        # A revision with depends_on stays a leaf: Alembic itself cannot upgrade
        # some merges of a revision with what it depends on.
        tips = [t for t in tips if t not in parents] + ([] if depends else [rev_id])
        revisions.append(
            Rev(
                rev_id,
                down,
                upgrade=create_table(rev_id, rows=1),
                downgrade=f'op.drop_table("t_{rev_id}")',
                depends_on=depends,
            )
        )
    return revisions


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(revisions=graphs(), data=st.data())
def test_downgrade_then_upgrade_returns_to_the_same_heads(
    revisions: list[Rev], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'db.sqlite'}"
        ini = write_project(root / "project", revisions)
        alembic_upgrade(url, ini)
        start = heads(url)
        journal = Journal(Store(f"sqlite:///{root / 'state.db'}"))
        executor = Executor(journal, Bus())
        target = target_for(url, ini)

        spec = data.draw(st.sampled_from(["base", *[r.id for r in revisions]]))
        try:
            plan = migrations.plan(target, spec, preview_sql=False)
        except ConfigError:
            # Alembic's rule: a revision reached only through depends_on is not
            # a downgrade target. dbr refuses it before touching anything.
            assert heads(url) == start
            event("target reached only through depends_on: refused")
            return
        outcome = executor.run(plan, target, confirmed=True, safety_backup=False)
        assert outcome.ok, outcome.error
        assert heads(url) == plan.summary["to"]
        project = migrations.load_project(target)
        kept = applied_revisions(project.script, plan.summary["to"])
        assert tables(url) - {"alembic_version"} == {f"t_{r}" for r in kept}

        back = migrations.plan(target, "heads", direction="upgrade")
        assert back.summary["to"] == start
        assert executor.run(back, target, confirmed=True).ok
        assert heads(url) == start
        assert tables(url) - {"alembic_version"} == {f"t_{r.id}" for r in revisions}
