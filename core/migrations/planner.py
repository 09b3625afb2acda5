"""Migration plans: which revisions run, their SQL, their risks, what must hold."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alembic.runtime.migration import HeadMaintainer, MigrationContext, RevisionStep
from alembic.util import CommandError

from core.errors import ConfigError, DbrError, Refused
from core.migrations import execution
from core.migrations.history import Current, check_heads, read_analysis
from core.migrations.project import Project, load_project
from core.migrations.risks import Measurer, step_risks
from core.plans import Plan, Postcondition, Risk, Step
from core.secrets import redact
from core.targets import Target

if TYPE_CHECKING:
    from core.journal import Journal

log = logging.getLogger(__name__)

RELATIVE = re.compile(r"^[+-]\d+$")
NON_TRANSACTIONAL = "mysql"  # MySQL and MariaDB commit DDL implicitly


class AmbiguousTarget(ConfigError):
    """A relative target that could mean several things; carries the choices."""

    def __init__(self, spec: str, choices: list[str], heads: list[str]) -> None:
        super().__init__(
            f"{spec!r} is ambiguous: the database has {len(heads)} heads "
            f"({', '.join(heads)})",
            cause="choose one of: " + ", ".join(choices),
            hint=f"run again with --to {choices[0]} (or another choice)",
        )
        self.choices = choices


@dataclass
class Route:
    """The steps Alembic will run, and the heads before and after each."""

    direction: str
    spec: str
    current: Current
    steps: list[RevisionStep]
    heads: list[tuple[str, ...]]  # heads[i] before step i; heads[-1] at the end

    @property
    def start(self) -> list[str]:
        return sorted(self.heads[0])

    @property
    def end(self) -> list[str]:
        return sorted(self.heads[-1])


def route(project: Project, spec: str, direction: str = "downgrade") -> Route:
    """Resolve SPEC against the database's heads, as `alembic downgrade` would."""
    if direction not in ("downgrade", "upgrade"):
        raise ConfigError(f"unknown direction {direction!r}")
    spec = spec.strip()
    if not spec:
        raise ConfigError(
            "no target revision given",
            hint="--to REV, base, -N, BRANCH@-N or BRANCH@REV",
        )
    now = check_heads(project.target.name, project.script, project.version_state())
    blocking = [p for p in now.problems if p.kind != "missing_version_table"]
    if blocking:
        raise DbrError(
            f"cannot plan a migration of {project.target.name!r}",
            cause="; ".join(p.message for p in blocking),
            hint=blocking[0].hint,
        )
    heads = tuple(now.heads)
    if RELATIVE.match(spec) and len(heads) > 1:
        raise AmbiguousTarget(spec, _choices(project, heads, spec), sorted(heads))
    script = project.script
    try:
        if direction == "downgrade":
            steps = script._downgrade_revs(spec, heads)
        else:
            steps = script._upgrade_revs(spec, heads)
    except CommandError as exc:
        hint = "see `dbr migrations history` for the revisions"
        if "mbiguous walk" in str(exc):
            hint = (
                "a relative step cannot pass a merge revision: give the revision "
                "to end at, or BRANCH@-N (see `dbr migrations history`)"
            )
        raise ConfigError(
            f"cannot {direction} {project.target.name!r} to {spec!r}",
            cause=redact(str(exc)),
            hint=hint,
        ) from None
    return Route(
        direction=direction,
        spec=spec,
        current=now,
        steps=steps,
        heads=predict_heads(heads, steps),
    )


def predict_heads(
    heads: tuple[str, ...], steps: list[RevisionStep]
) -> list[tuple[str, ...]]:
    """The version table's rows before each step and after the last one."""
    tracker = _Heads(heads)
    result = [tuple(sorted(tracker.heads))]
    for step in steps:
        tracker.update_to_step(step)
        result.append(tuple(sorted(tracker.heads)))
    return result


class _Heads(HeadMaintainer):
    """Alembic's own head bookkeeping, without writing to a database."""

    def __init__(self, heads: tuple[str, ...]) -> None:
        self.heads = set(heads)

    def _insert_version(self, version: str) -> None:
        self.heads.add(version)

    def _delete_version(self, version: str) -> None:
        self.heads.remove(version)

    def _update_version(self, from_: str, to_: str) -> None:
        self.heads.remove(from_)
        self.heads.add(to_)


def _choices(project: Project, heads: tuple[str, ...], spec: str) -> list[str]:
    """`branch@-N` for each head: its own branch label when unique, else its id."""
    labels: dict[str, list[str]] = {}
    for head in heads:
        labels[head] = sorted(
            project.script.revision_map.get_revision(head).branch_labels
        )
    choices = []
    for head in sorted(heads):
        own = [
            label
            for label in labels[head]
            if sum(label in labels[h] for h in heads) == 1
        ]
        choices.append(f"{own[0] if own else head}@{spec}")
    return choices


def render_sql(
    project: Project, steps: list[RevisionStep], heads: list[tuple[str, ...]]
) -> list[tuple[str | None, str | None]]:
    """(sql, not_previewable reason) for each step, rendered offline by env.py.

    One env.py run renders the whole route; a step that cannot render (it needs a
    live connection, or batch mode must reflect the table) is marked, and the
    rendering resumes after it.
    """
    out: list[tuple[str | None, str | None]] = []
    while len(out) < len(steps):
        start = len(out)
        buffer = io.StringIO()
        error: BaseException | None = None
        remaining = steps[start:]

        def fn(
            _heads: tuple[str, ...],
            _context: MigrationContext,
            remaining: list[RevisionStep] = remaining,
        ) -> list[RevisionStep]:
            return remaining

        try:
            project.run_env(
                fn, as_sql=True, starting_rev=heads[start] or None, output=buffer
            )
        except Exception as exc:  # any failure of env.py or a script: not renderable
            error = exc
        chunks = _split(buffer.getvalue())
        rendered = chunks if error is None else chunks[:-1]
        out.extend((sql, None) for sql in rendered[: len(remaining)])
        if error is not None:
            if len(out) < len(steps):
                out.append((None, _reason(error)))
            if not chunks:
                out.extend((None, _reason(error)) for _ in steps[len(out) :])
    return out


def _split(text: str) -> list[str]:
    """Offline output cut at Alembic's `-- Running ...` comments."""
    lines = [ln for ln in text.splitlines() if ln.strip() not in ("BEGIN;", "COMMIT;")]
    chunks: list[list[str]] = []
    for line in lines:
        if line.startswith("-- Running "):
            chunks.append([])
        elif chunks and line.strip():
            chunks[-1].append(line)
    return ["\n".join(chunk).strip() for chunk in chunks]


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return redact(
        f"cannot render offline: {type(error).__name__}" + (f": {text}" if text else "")
    )


def plan(
    target: Target,
    spec: str,
    *,
    direction: str = "downgrade",
    journal: Journal | None = None,
    project: Project | None = None,
    preview_sql: bool = True,
) -> Plan:
    """The plan to migrate target to SPEC; nothing is run."""
    project = project or load_project(target)
    path = route(project, spec, direction)
    sql = (
        render_sql(project, path.steps, path.heads)
        if preview_sql
        else [(None, "not rendered")] * len(path.steps)
    )
    transactional = target.dialect != NON_TRANSACTIONAL
    steps, risks = [], []
    memory = execution.Memory()
    with project.connect() as conn:
        measure = Measurer(conn, target)
        for index, alembic_step in enumerate(path.steps):
            step = _step(
                project,
                path,
                index,
                alembic_step,
                sql[index],
                transactional,
                journal,
                memory,
            )
            script = alembic_step.revision
            analysis = read_analysis(script.path, direction)
            if analysis.autocommits:
                step.transactional = False
                step.run = execution.step_runner(
                    project,
                    alembic_step,
                    path.heads[index],
                    path.heads[index + 1],
                    memory,
                    own_transaction=False,
                )
            found = step_risks(
                step.name,
                script.revision,
                analysis,
                is_merge=len(script._versioned_down_revisions) > 1,
                measure=measure,
                critical_tables=target.config.critical_tables,
                direction=direction,
            )
            step.destructive = any(
                r.severity == "critical"
                or r.kind in ("drop_table", "drop_column", "delete_rows", "raw_sql")
                for r in found
            )
            risks.extend(found)
            steps.append(step)
        conn.rollback()
    if steps and not transactional:
        risks.append(
            Risk(
                "non_transactional",
                f"{target.dialect} commits DDL at once:"
                " a failing step can stay half-applied (dbr reports what "
                "it committed)",
            )
        )
    result = Plan(
        kind=f"migration.{direction}",
        target=target.name,
        title=f"{direction} {target.name} to {spec}",
        steps=steps,
        risks=risks,
        summary={
            "from": path.start,
            "to": path.end,
            "spec": spec,
            "direction": direction,
            "revisions": len(steps),
            "moves": f"{_heads(path.start)} -> {_heads(path.end)}",
        },
        postconditions=[_heads_postcondition(project, path.end)],
        explain_failure=execution.explain(project, memory),
        snapshot=True,
    )
    if result.destructive:
        result.safety_backup = _safety_backup(target, result.title)
    return result


def _step(
    project: Project,
    path: Route,
    index: int,
    alembic_step: RevisionStep,
    sql: tuple[str | None, str | None],
    transactional: bool,
    journal: Journal | None,
    memory: execution.Memory,
) -> Step:
    script = alembic_step.revision
    name = f"{path.direction} {script.revision}"
    before, after = path.heads[index], path.heads[index + 1]
    return Step(
        name=name,
        description=(
            f"{', '.join(alembic_step.from_revisions_no_deps) or 'base'} -> "
            f"{', '.join(alembic_step.to_revisions_no_deps) or 'base'}: "
            f"{(script.doc or '').strip()}"
        ),
        run=execution.step_runner(project, alembic_step, before, after, memory),
        sql=sql[0],
        not_previewable=sql[1],
        transactional=transactional,
        estimate=journal.estimate(project.target.name, name) if journal else None,
        detail={
            "revision": script.revision,
            "from_revisions": list(alembic_step.from_revisions_no_deps),
            "to_revisions": list(alembic_step.to_revisions_no_deps),
            "message": (script.doc or "").strip(),
            "heads_after": list(after),
        },
    )


def _sum_estimates(
    journal: Journal | None, target: str, names: list[str]
) -> float | None:
    """The sum of past durations of these steps, when every one has run before."""
    if journal is None:
        return None
    known = [journal.estimate(target, name) for name in names]
    return None if any(k is None for k in known) else float(sum(known))


def _heads(heads: list[str]) -> str:
    return ", ".join(heads) or "base"


def _heads_postcondition(project: Project, end: list[str]) -> Postcondition:
    def check(ctx: Any) -> tuple[bool, str]:
        heads = sorted(project.version_state().heads)
        return heads == end, f"version table holds {', '.join(heads) or 'nothing'}"

    return Postcondition(
        f"the version table holds {', '.join(end) or 'no revision'}", check
    )


def _safety_backup(target: Target, title: str) -> Step:
    """A pinned backup of the target as it is, run first by the executor."""
    from core.backups import safety_backup_step  # the backup engine is heavy

    return safety_backup_step(target, f"before {title}")


def trial_plan(
    target: Target,
    spec: str,
    *,
    journal: Journal | None = None,
    project: Project | None = None,
) -> Plan:
    """Run the whole downgrade in one transaction and roll it back."""
    if target.dialect == NON_TRANSACTIONAL:
        raise Refused(
            f"cannot trial a downgrade of {target.name!r}",
            cause="MySQL and MariaDB commit each DDL statement at once, "
            "so a rolled-back trial would still change the schema",
            hint="run the downgrade against a copy of the database "
            "(restore a backup into a scratch database) instead",
        )
    project = project or load_project(target)
    path = route(project, spec, "downgrade")
    itself = [
        s.revision.revision
        for s in path.steps
        if read_analysis(s.revision.path).autocommits
    ]
    if itself:
        raise Refused(
            f"cannot trial a downgrade of {target.name!r}",
            cause=f"{', '.join(itself)} commit(s) part of the work itself "
            "(autocommit_block), which no transaction can roll back",
            hint="plan the downgrade without --trial, or trial it in a "
            "copy of the database",
        )
    name = "trial downgrade"
    rendered = render_sql(project, path.steps, path.heads)
    sql = "\n".join(
        f"-- {s.short_log}\n{text or f'-- not previewable: {reason}'}"
        for s, (text, reason) in zip(path.steps, rendered, strict=True)
    )
    step = Step(
        name=name,
        description=f"{len(path.steps)} revision(s) to {_heads(path.end)}, in one "
        "transaction, then rolled back: "
        + ", ".join(s.revision.revision for s in path.steps),
        sql=sql or None,
        run=execution.trial_runner(project, path.steps, path.heads[0], path.heads[-1]),
        transactional=True,
        estimate=_sum_estimates(
            journal,
            target.name,
            [f"downgrade {s.revision.revision}" for s in path.steps],
        ),
        detail={"revisions": [s.revision.revision for s in path.steps]},
    )
    start = sorted(path.heads[0])
    return Plan(
        kind="migration.trial",
        target=target.name,
        title=f"trial downgrade of {target.name} to {spec}",
        steps=[step],
        summary={
            "from": start,
            "to": path.end,
            "spec": spec,
            "direction": "downgrade",
            "trial": True,
            "revisions": len(path.steps),
            "moves": f"{_heads(start)} -> {_heads(path.end)} -> back to "
            f"{_heads(start)}",
        },
        postconditions=[_heads_postcondition(project, start)],
        explain_failure=execution.explain(project, execution.Memory()),
    )
