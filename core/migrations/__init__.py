"""Migration rollback along a target's Alembic history.

Public API (every result is a dataclass with to_dict(); nothing here prints):

    load_project(target) -> Project
        The target's Alembic project (`alembic` in dbr.toml: an alembic.ini, a
        pyproject.toml or a script folder). Its own env.py runs for every action;
        pass the Project to the functions below to load the scripts once.
    current(target, project=None) -> Current
        The database's heads, the scripts' heads, and problems with the version
        table (missing, unknown revision: code older than the database, rows that
        are not a valid set of heads, duplicates).
    history(target, project=None) -> History
        current + every revision, newest first: id, down_revisions, branch labels,
        depends_on, message, date, head/base/merge/branch-point flags, applied, and
        a static analysis of its downgrade() (empty, raises, operations).
    plan(target, spec, direction="downgrade"|"upgrade", journal=None,
         project=None) -> core.plans.Plan
        SPEC: revision or unique prefix, base, heads, -N/+N, branch@-N, branch@rev.
        A relative SPEC on a database with several heads raises AmbiguousTarget
        (ConfigError, exit 2) with .choices. The plan's steps carry offline SQL or
        not_previewable, risks carry live row counts and sizes, summary has
        from/to; run it with Executor.run (schema snapshots are recorded, and a
        safety backup runs first when it is destructive).
    trial_plan(target, spec, journal=None, project=None) -> Plan
        The whole downgrade in one transaction, rolled back (PostgreSQL, SQLite;
        Refused on MySQL/MariaDB).
    route(project, spec, direction) -> Route
        Only the steps and the heads before/after each (no database reads but the
        version table); used by plan and by the round-trip test.
    roundtrip(target, scratch_url, progress=None, copy_schema=False,
              journal=None) -> RoundTrip
        Upgrade, snapshot, downgrade, compare, upgrade again for every revision,
        in a scratch database dbr creates (an existing one is refused) and always
        drops. Statuses: ok, leftover (a PostgreSQL enum type, say), noop (the
        downgrade does nothing), failed, not reached. copy_schema starts from the
        target's schema without rows at its heads and walks down, for projects
        whose first revision expects tables made before Alembic.
        progress(done, total, message) is called before each revision; with a
        journal the run is recorded as a migration.roundtrip operation.

How a plan runs (core.migrations.execution): each revision in its own transaction
(env.py joins dbr's; a revision with an autocommit_block gets Alembic's instead and
is marked non-transactional), the version table checked against the prediction
before commit, and a failure report naming the revision the database is at, what
the failed step committed (MySQL/MariaDB) and what to do. env.py runs one at a time
per process, its fileConfig() is skipped, and it must connect to the target (an
env.py that opens another database is refused).

Schema snapshots live in core.snapshots (take, record, diff, load, snapshots); the
executor records one before and after every plan with Plan.snapshot set.
"""

from __future__ import annotations

from core.migrations.history import (
    Current,
    History,
    Problem,
    Revision,
    current,
    history,
)
from core.migrations.planner import AmbiguousTarget, Route, plan, route, trial_plan
from core.migrations.project import Project, load_project
from core.migrations.roundtrip import RoundTrip, roundtrip

__all__ = [
    "AmbiguousTarget",
    "Current",
    "History",
    "Problem",
    "Project",
    "Revision",
    "RoundTrip",
    "Route",
    "current",
    "history",
    "load_project",
    "plan",
    "roundtrip",
    "route",
    "trial_plan",
]
