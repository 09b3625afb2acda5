"""The revision graph of a target, what the database has applied, and its problems."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alembic.script import Script, ScriptDirectory

from core.migrations.analysis import Downgrade
from core.migrations.cache import AnalysisCache, analyse_file
from core.migrations.project import Project, VersionState, load_project
from core.targets import Target

log = logging.getLogger(__name__)


@dataclass
class Revision:
    revision: str
    down_revisions: list[str]
    branch_labels: list[str]
    depends_on: list[str]
    message: str
    date: str | None
    path: str | None
    is_head: bool
    is_base: bool
    is_merge: bool
    is_branch_point: bool
    applied: bool
    downgrade: Downgrade

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "down_revisions": self.down_revisions,
            "branch_labels": self.branch_labels,
            "depends_on": self.depends_on,
            "message": self.message,
            "date": self.date,
            "path": self.path,
            "is_head": self.is_head,
            "is_base": self.is_base,
            "is_merge": self.is_merge,
            "is_branch_point": self.is_branch_point,
            "applied": self.applied,
            "downgrade": self.downgrade.to_dict(),
        }


@dataclass(frozen=True)
class Problem:
    """Something wrong with the version table, with what to do about it."""

    kind: str  # missing_version_table, unknown_revision, not_heads, duplicate, empty
    message: str
    hint: str
    revisions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "hint": self.hint,
            "revisions": list(self.revisions),
        }


@dataclass
class Current:
    """Where the database stands: its heads and anything wrong with them."""

    target: str
    heads: list[str]
    script_heads: list[str]
    version_table: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def at_head(self) -> bool:
        return not self.problems and set(self.heads) == set(self.script_heads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "heads": self.heads,
            "script_heads": self.script_heads,
            "at_head": self.at_head,
            "version_table": self.version_table,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass
class History:
    target: str
    current: Current
    revisions: list[Revision]  # newest first, as `alembic history` lists them

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "current": self.current.to_dict(),
            "revisions": [r.to_dict() for r in self.revisions],
        }


def current(target: Target, project: Project | None = None) -> Current:
    """The database's heads, checked against the scripts."""
    project = project or load_project(target)
    return check_heads(target.name, project.script, project.version_state())


def history(target: Target, project: Project | None = None) -> History:
    """Every revision with its flags, applied mark and downgrade analysis."""
    project = project or load_project(target)
    now = current(target, project)
    script = project.script
    applied = applied_revisions(script, now.heads)
    scripts = {
        rev.revision: rev
        for rev in script.revision_map._revision_map.values()
        if rev is not None
    }
    cache = AnalysisCache(script.versions)
    children = _children(scripts)
    revisions = [
        _revision(rev, applied, children[rev.revision], cache)
        for rev in newest_first(scripts)
    ]
    cache.save()
    return History(target=target.name, current=now, revisions=revisions)


def newest_first(scripts: dict[str, Script]) -> list[Script]:
    """Every revision before all it stands on (parents and depends_on).

    Alembic's own walk sorts the graph in quadratic time on long histories; this
    is linear, and keeps each branch's revisions together.
    """
    below = {
        rev: [p for p in s._all_down_revisions if p in scripts]
        for rev, s in scripts.items()
    }
    waiting = dict.fromkeys(scripts, 0)
    for parents in below.values():
        for parent in parents:
            waiting[parent] += 1
    stack = sorted((rev for rev, n in waiting.items() if n == 0), reverse=True)
    order = []
    while stack:
        rev = stack.pop()
        order.append(scripts[rev])
        for parent in reversed(below[rev]):
            waiting[parent] -= 1
            if waiting[parent] == 0:
                stack.append(parent)
    return order


def _children(scripts: dict[str, Script]) -> dict[str, int]:
    """How many revisions name each revision as a parent (branch points: > 1)."""
    counts = dict.fromkeys(scripts, 0)
    for rev in scripts.values():
        for parent in rev._versioned_down_revisions:
            if parent in counts:
                counts[parent] += 1
    return counts


def applied_revisions(
    script: ScriptDirectory, heads: list[str] | tuple[str, ...]
) -> set[str]:
    """Every revision at or below the heads, dependencies included."""
    revision_map = script.revision_map
    seen: set[str] = set()
    todo = [h for h in heads if _known(script, h)]
    while todo:
        revision = todo.pop()
        if revision in seen:
            continue
        seen.add(revision)
        rev = revision_map.get_revision(revision)
        if rev is not None:
            todo.extend(rev._all_down_revisions)
    return seen


def check_heads(target: str, script: ScriptDirectory, state: VersionState) -> Current:
    heads = list(state.heads)
    script_heads = list(script.get_heads())
    result = Current(
        target=target,
        heads=heads,
        script_heads=script_heads,
        version_table=(
            f"{state.schema}.{state.table}" if state.schema else state.table
        ),
    )
    if not state.exists:
        result.problems.append(
            Problem(
                "missing_version_table",
                f"the database has no version table ({result.version_table})",
                "the database was never migrated with Alembic, or the table was dropped;"
                " if its schema matches a revision, `alembic stamp REV` records it",
            )
        )
        return result
    if len(set(heads)) != len(heads):
        doubled = tuple(sorted({h for h in heads if heads.count(h) > 1}))
        result.problems.append(
            Problem(
                "duplicate",
                f"the version table holds {', '.join(doubled)} more than once",
                "delete the extra rows from the version table",
                doubled,
            )
        )
    unknown = tuple(h for h in heads if not _known(script, h))
    if unknown:
        result.problems.append(
            Problem(
                "unknown_revision",
                f"the database is at {', '.join(unknown)}, which the scripts do not "
                "know: the code is older than the database",
                "deploy the code that holds this revision (or point `alembic` in "
                "dbr.toml at it) before planning a downgrade",
                unknown,
            )
        )
    known = [h for h in set(heads) if h not in unknown]
    # Only the down_revision chain counts: a row may depend_on another row.
    below = {
        h
        for h in known
        if any(h != other and h in _lineage(script, other) for other in known)
    }
    if below:
        result.problems.append(
            Problem(
                "not_heads",
                f"the version table is not a valid set of heads: {', '.join(sorted(below))}"
                " is an ancestor of another row",
                "remove the ancestor rows from the version table (`alembic stamp` the "
                "real heads)",
                tuple(sorted(below)),
            )
        )
    return result


def _lineage(script: ScriptDirectory, head: str) -> set[str]:
    """The revisions below head along down_revision alone."""
    seen: set[str] = set()
    todo = [head]
    while todo:
        revision = todo.pop()
        if revision in seen:
            continue
        seen.add(revision)
        rev = script.revision_map.get_revision(revision)
        if rev is not None:
            todo.extend(rev._versioned_down_revisions)
    return seen - {head}


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.revision_map.get_revision(revision) is not None
    except Exception:  # Alembic raises several kinds for an unknown id
        return False


def _revision(
    rev: Script, applied: set[str], children: int, cache: AnalysisCache
) -> Revision:
    downs = list(rev._versioned_down_revisions)
    return Revision(
        revision=rev.revision,
        down_revisions=downs,
        branch_labels=sorted(rev._orig_branch_labels),
        depends_on=list(_tuple(rev.dependencies)),
        message=(rev.doc or "").strip(),
        date=_date(rev),
        path=rev.path,
        is_head=rev.is_head,
        is_base=rev.is_base,
        is_merge=len(downs) > 1,
        is_branch_point=children > 1,
        applied=rev.revision in applied,
        downgrade=cache.analysis(rev.path),
    )


def read_analysis(path: str | None, function: str = "downgrade") -> Downgrade:
    if not path:
        return Downgrade(found=False, problem="no source file")
    return analyse_file(path, function)


def _date(rev: Script) -> str | None:
    """The Create Date from the file's docstring, as ISO-8601 when it parses."""
    doc = rev.module.__doc__ or ""
    for line in doc.splitlines():
        if line.strip().lower().startswith("create date:"):
            value = line.split(":", 1)[1].strip()
            try:
                return datetime.fromisoformat(value).isoformat()
            except ValueError:
                return value or None
    return None


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
