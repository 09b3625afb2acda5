"""Schema snapshots: tables, columns, types, indexes, constraints and row counts.

The executor records one before and one after every plan that changes a database
(Plan.snapshot), so the journal can always say what an operation did to the schema.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.errors import DbrError
from core.state import Store, schema_snapshots, utcnow
from core.targets import Target

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version"
COUNT_TIMEOUT_MS = 5000  # one count(*), before the statistics are used instead
COUNT_BUDGET = 20.0  # seconds of exact counts per snapshot, all tables together


@dataclass
class Snapshot:
    target: str
    dialect: str
    at: datetime
    revision: list[str] | None  # the version table's rows; None when it is absent
    tables: dict[str, dict[str, Any]]
    types: dict[str, Any] = field(default_factory=dict)  # PG enums and sequences
    id: int | None = None
    label: str | None = None
    operation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "dialect": self.dialect,
            "at": self.at.isoformat(),
            "revision": self.revision,
            "label": self.label,
            "operation_id": self.operation_id,
            "tables": self.tables,
            "types": self.types,
        }


@dataclass
class SchemaDiff:
    """What changed from one snapshot to another."""

    tables_added: list[str] = field(default_factory=list)
    tables_removed: list[str] = field(default_factory=list)
    tables_changed: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    types_added: list[str] = field(default_factory=list)
    types_removed: list[str] = field(default_factory=list)
    types_changed: list[str] = field(default_factory=list)
    rows: dict[str, list[int | None]] = field(default_factory=dict)

    @property
    def schema_changed(self) -> bool:
        return bool(
            self.tables_added
            or self.tables_removed
            or self.tables_changed
            or self.types_added
            or self.types_removed
            or self.types_changed
        )

    @property
    def empty(self) -> bool:
        return not self.schema_changed and not self.rows

    def lines(self) -> list[str]:
        """One readable line per change."""
        out = [f"table {t} added" for t in self.tables_added]
        out += [f"table {t} removed" for t in self.tables_removed]
        for table, changes in self.tables_changed.items():
            out += [f"table {table}: {change}" for change in changes]
        out += [f"type {t} added" for t in self.types_added]
        out += [f"type {t} removed" for t in self.types_removed]
        out += [f"type {t} changed" for t in self.types_changed]
        out += [f"table {t}: rows {a} -> {b}" for t, (a, b) in self.rows.items()]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_changed": self.schema_changed,
            "tables_added": self.tables_added,
            "tables_removed": self.tables_removed,
            "tables_changed": self.tables_changed,
            "types_added": self.types_added,
            "types_removed": self.types_removed,
            "types_changed": self.types_changed,
            "rows": self.rows,
            "changes": self.lines(),
        }


def take(
    target: Target,
    *,
    counts: bool = True,
    engine: Engine | None = None,
    known_rows: dict[str, int] | None = None,
) -> Snapshot:
    """The live schema of the target's default schema; known_rows are exact
    counts read already (not counted again)."""
    engine = engine or target.engine()
    try:
        with engine.connect() as conn:
            return _take(conn, target, counts, known_rows or {})
    except sa.exc.OperationalError as exc:
        raise DbrError(
            f"cannot read the schema of {target.name!r}",
            cause=str(exc.orig or exc).strip().splitlines()[0],
            hint="check that the database is up",
        ) from None


def _take(
    conn: Connection, target: Target, counts: bool, known: dict[str, int]
) -> Snapshot:
    inspector = sa.inspect(conn)
    tables: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + COUNT_BUDGET
    # One query per kind of fact for all tables at once, not one per table.
    facts = {
        kind: {key[1]: value for key, value in found.items()}
        for kind, found in (
            ("columns", inspector.get_multi_columns()),
            ("pk", inspector.get_multi_pk_constraint()),
            ("fks", inspector.get_multi_foreign_keys()),
            ("indexes", inspector.get_multi_indexes()),
            ("uniques", inspector.get_multi_unique_constraints()),
            ("checks", _checks(inspector)),
        )
    }
    for name in sorted(facts["columns"]):
        tables[name] = _table(facts, name)
        if not counts:
            continue
        rows = known.get(name)
        if rows is None and time.monotonic() < deadline:
            rows = count_rows(conn, target.dialect, name)
        if rows is None:
            # Past the budget (or too slow): the server's statistics, marked so.
            rows = estimate_rows(conn, target.dialect, name)
            tables[name]["rows_estimated"] = rows is not None
        tables[name]["rows"] = rows
    types: dict[str, Any] = {}
    if target.dialect == "postgresql":
        types = {f"enum {e['name']}": list(e["labels"]) for e in inspector.get_enums()}
        types.update({f"sequence {s}": None for s in inspector.get_sequence_names()})
    revision = None
    if VERSION_TABLE in tables:
        revision = sorted(
            conn.execute(sa.text(f"select version_num from {VERSION_TABLE}")).scalars()
        )
    conn.rollback()
    return Snapshot(
        target=target.name,
        dialect=target.dialect,
        at=utcnow(),
        revision=revision,
        tables=tables,
        types=types,
    )


def _checks(inspector: sa.Inspector) -> dict:
    try:
        return inspector.get_multi_check_constraints()
    except NotImplementedError:
        return {}


def _table(facts: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    columns = {
        c["name"]: {
            "type": str(c["type"]),
            "nullable": bool(c["nullable"]),
            "default": None if c.get("default") is None else str(c["default"]),
        }
        for c in facts["columns"][name]
    }
    pk = (facts["pk"].get(name) or {}).get("constrained_columns") or []
    fks = sorted(
        f"({', '.join(fk['constrained_columns'])}) -> {fk['referred_table']}"
        f"({', '.join(fk['referred_columns'])})"
        for fk in facts["fks"].get(name, [])
    )
    indexes = sorted(
        f"{ix['name']} ({', '.join(str(c) for c in ix['column_names'])})"
        + (" unique" if ix.get("unique") else "")
        for ix in facts["indexes"].get(name, [])
    )
    uniques = sorted(
        f"({', '.join(u['column_names'])})" for u in facts["uniques"].get(name, [])
    )
    checks = sorted(c["sqltext"] for c in facts["checks"].get(name, []))
    return {
        "columns": columns,
        "primary_key": list(pk),
        "foreign_keys": fks,
        "indexes": indexes,
        "unique": uniques,
        "checks": checks,
    }


def count_rows(
    conn: Connection, dialect: str, table: str, column: str | None = None
) -> int | None:
    """count(*) (or non-null values of column), None when it takes too long."""
    preparer = conn.dialect.identifier_preparer
    what = f"count({preparer.quote(column)})" if column else "count(*)"
    query = f"select {what} from {preparer.quote(table)}"
    try:
        if dialect == "postgresql":
            with conn.begin_nested():
                conn.exec_driver_sql(
                    f"set local statement_timeout = {COUNT_TIMEOUT_MS}"
                )
                return int(conn.exec_driver_sql(query).scalar_one())
        if dialect == "mysql" and getattr(conn.dialect, "is_mariadb", False):
            seconds = COUNT_TIMEOUT_MS / 1000
            query = f"set statement max_statement_time={seconds} for {query}"
        return int(conn.exec_driver_sql(query).scalar_one())
    except sa.exc.DBAPIError as exc:
        log.warning("could not count %s: %s", table, str(exc.orig).splitlines()[0])
        return None


def estimate_rows(conn: Connection, dialect: str, table: str) -> int | None:
    """The planner statistics' row count, for a table too big to count in time."""
    try:
        if dialect == "postgresql":
            value = conn.execute(
                sa.text(
                    "select reltuples from pg_class where oid = cast(:t as regclass)"
                ),
                {"t": table},
            ).scalar()
        elif dialect == "mysql":
            value = conn.execute(
                sa.text(
                    "select table_rows from information_schema.tables "
                    "where table_schema = database() and table_name = :t"
                ),
                {"t": table},
            ).scalar()
        else:
            return None
    except sa.exc.DBAPIError:
        conn.rollback()
        return None
    return None if value is None or value < 0 else int(value)


def table_bytes(conn: Connection, dialect: str, table: str) -> int | None:
    """On-disk size of a table with its indexes, when the server says."""
    try:
        if dialect == "postgresql":
            return conn.execute(
                sa.text("select pg_total_relation_size(cast(:t as regclass))"),
                {"t": table},
            ).scalar()
        if dialect == "mysql":
            return conn.execute(
                sa.text(
                    "select data_length + index_length from information_schema.tables "
                    "where table_schema = database() and table_name = :t"
                ),
                {"t": table},
            ).scalar()
        return conn.execute(
            sa.text("select sum(pgsize) from dbstat where name = :t"), {"t": table}
        ).scalar()
    except sa.exc.DBAPIError:
        conn.rollback()
        return None  # dbstat is not compiled into every SQLite


def diff(
    before: Snapshot,
    after: Snapshot,
    *,
    rows: bool = True,
    ignore: tuple[str, ...] = (),
) -> SchemaDiff:
    result = SchemaDiff()
    a = {k: v for k, v in before.tables.items() if k not in ignore}
    b = {k: v for k, v in after.tables.items() if k not in ignore}
    result.tables_added = sorted(set(b) - set(a))
    result.tables_removed = sorted(set(a) - set(b))
    for name in sorted(set(a) & set(b)):
        changes = _table_changes(a[name], b[name])
        if changes:
            result.tables_changed[name] = changes
        if rows and a[name].get("rows") != b[name].get("rows"):
            result.rows[name] = [a[name].get("rows"), b[name].get("rows")]
    result.types_added = sorted(set(after.types) - set(before.types))
    result.types_removed = sorted(set(before.types) - set(after.types))
    result.types_changed = sorted(
        t
        for t in set(before.types) & set(after.types)
        if before.types[t] != after.types[t]
    )
    return result


def _table_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    changes = []
    cols_a, cols_b = a["columns"], b["columns"]
    changes += [f"column {c} added" for c in cols_b if c not in cols_a]
    changes += [f"column {c} removed" for c in cols_a if c not in cols_b]
    for column in (c for c in cols_a if c in cols_b):
        for key in ("type", "nullable", "default"):
            if cols_a[column][key] != cols_b[column][key]:
                changes.append(
                    f"column {column} {key} {cols_a[column][key]} -> "
                    f"{cols_b[column][key]}"
                )
    if a["primary_key"] != b["primary_key"]:
        changes.append(f"primary key {a['primary_key']} -> {b['primary_key']}")
    for key, word in (
        ("foreign_keys", "foreign key"),
        ("indexes", "index"),
        ("unique", "unique constraint"),
        ("checks", "check"),
    ):
        changes += [f"{word} {x} added" for x in b[key] if x not in a[key]]
        changes += [f"{word} {x} removed" for x in a[key] if x not in b[key]]
    return changes


def record(
    store: Store,
    snapshot: Snapshot,
    *,
    label: str | None = None,
    operation_id: str | None = None,
) -> int:
    """Keep a snapshot in the state store; returns its id."""
    with store.engine.begin() as conn:
        snapshot_id = conn.execute(
            schema_snapshots.insert().values(
                target=snapshot.target,
                operation_id=operation_id,
                label=label,
                at=snapshot.at,
                revision=",".join(snapshot.revision or []) or None,
                schema={
                    "dialect": snapshot.dialect,
                    "tables": snapshot.tables,
                    "types": snapshot.types,
                    "revision": snapshot.revision,
                },
            )
        ).inserted_primary_key[0]
    snapshot.id, snapshot.label, snapshot.operation_id = (
        snapshot_id,
        label,
        operation_id,
    )
    return snapshot_id


def load(store: Store, snapshot_id: int, target: str | None = None) -> Snapshot:
    query = sa.select(schema_snapshots).where(schema_snapshots.c.id == snapshot_id)
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None or (target is not None and row["target"] != target):
        raise DbrError(
            f"no schema snapshot {snapshot_id}" + (f" of {target!r}" if target else ""),
            hint="list them with `dbr migrations diff TARGET --list`",
        )
    return _from_row(row)


def snapshots(store: Store, target: str, *, limit: int = 20) -> list[Snapshot]:
    """The target's snapshots, newest first."""
    query = (
        sa.select(schema_snapshots)
        .where(schema_snapshots.c.target == target)
        .order_by(schema_snapshots.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [_from_row(row) for row in conn.execute(query).mappings()]


def _from_row(row: Any) -> Snapshot:
    schema = row["schema"]
    return Snapshot(
        target=row["target"],
        dialect=schema.get("dialect", ""),
        at=row["at"],
        revision=schema.get("revision"),
        tables=schema.get("tables", {}),
        types=schema.get("types", {}),
        id=row["id"],
        label=row["label"],
        operation_id=row["operation_id"],
    )
