"""The risks of a downgrade step, with live numbers from the database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.migrations.analysis import Downgrade, Operation
from core.plans import Risk
from core.snapshots import count_rows, estimate_rows, table_bytes
from core.targets import Target


class Measurer:
    """Counts rows and sizes once per table and column, on one connection."""

    def __init__(self, conn: Connection, target: Target) -> None:
        self.conn = conn
        self.dialect = target.dialect
        self.tables = set(sa.inspect(conn).get_table_names())
        self._cache: dict[tuple[str, str | None], int | None] = {}
        self._bytes: dict[str, int | None] = {}
        self._columns: dict[str, set[str]] = {}
        self.estimated: set[str] = set()  # tables whose count timed out

    def exists(self, table: str, column: str | None = None) -> bool:
        if table not in self.tables:
            return False
        if column is None:
            return True
        if table not in self._columns:
            self._columns[table] = {
                c["name"] for c in sa.inspect(self.conn).get_columns(table)
            }
        return column in self._columns[table]

    def rows(self, table: str, column: str | None = None) -> int | None:
        key = (table, column)
        if key not in self._cache:
            found = (
                count_rows(self.conn, self.dialect, table, column)
                if self.exists(table, column)
                else None
            )
            if found is None and column is None and self.exists(table):
                found = estimate_rows(self.conn, self.dialect, table)
                if found is not None:
                    self.estimated.add(table)
            self._cache[key] = found
        return self._cache[key]

    def count_text(
        self, rows: int | None, table: str, column: str | None = None
    ) -> str:
        if rows is None:
            return "an uncounted number of"
        if column is None and table in self.estimated:
            return f"about {rows:,} (estimated: counting took too long)"
        return f"{rows:,}"

    def size(self, table: str) -> int | None:
        if table not in self._bytes:
            self._bytes[table] = (
                table_bytes(self.conn, self.dialect, table)
                if self.exists(table)
                else None
            )
        return self._bytes[table]


def step_risks(
    step: str,
    revision: str,
    analysis: Downgrade,
    *,
    is_merge: bool,
    measure: Measurer,
    critical_tables: tuple[str, ...],
    direction: str = "downgrade",
) -> list[Risk]:
    """What running this revision's downgrade (or upgrade) puts at risk."""
    risks: list[Risk] = []
    if not analysis.found:
        risks.append(
            Risk(
                "unreadable",
                f"{revision}: cannot read its {direction}() "
                f"({analysis.problem}); dbr cannot say what it does",
                step=step,
            )
        )
    if analysis.raises:
        risks.append(
            Risk(
                "raises",
                f"{revision}: {direction}() raises; the plan will stop at this step",
                severity="critical",
                step=step,
            )
        )
    if analysis.empty and not is_merge and direction == "downgrade":
        risks.append(
            Risk(
                "irreversible",
                f"{revision}: downgrade() does nothing; "
                "what its upgrade changed stays as it is",
                step=step,
            )
        )
    for operation in analysis.operations:
        risk = _operation_risk(step, revision, operation, measure, critical_tables)
        if risk is not None:
            risks.append(risk)
    return sorted(risks, key=lambda r: r.severity != "critical")


def _operation_risk(
    step: str,
    revision: str,
    op: Operation,
    measure: Measurer,
    critical_tables: tuple[str, ...],
) -> Risk | None:
    table, column = op.table, op.column
    where = f"{revision} (line {op.line})"
    critical_note = " (a critical table)" if table in critical_tables else ""
    if op.kind in ("drop_table", "delete_rows") and table:
        rows, size = measure.rows(table), measure.size(table)
        verb = "drops table" if op.kind == "drop_table" else "deletes the rows of"
        if not measure.exists(table):
            return Risk(
                op.kind,
                f"{where} {verb} {table} (not present now)",
                table=table,
                step=step,
            )
        return Risk(
            op.kind,
            f"{where} {verb} {table}{critical_note}: "
            f"{measure.count_text(rows, table)} rows, {_bytes(size)}",
            severity=_severity(rows, table, critical_tables),
            table=table,
            rows=rows,
            bytes=size,
            step=step,
        )
    if op.kind == "drop_column" and table and column:
        if not measure.exists(table, column):
            return Risk(
                op.kind,
                f"{where} drops column {table}.{column} (not present now)",
                table=table,
                column=column,
                step=step,
            )
        rows, size = measure.rows(table, column), measure.size(table)
        batch = "; the table is copied (batch mode)" if op.batch else ""
        return Risk(
            op.kind,
            f"{where} drops column {table}.{column}{critical_note}: "
            f"{_count(rows)} non-null values (table {_bytes(size)}){batch}",
            severity=_severity(rows, table, critical_tables),
            table=table,
            column=column,
            rows=rows,
            bytes=size,
            step=step,
        )
    if op.kind == "alter_type" and table and column:
        rows = measure.rows(table, column) if measure.exists(table, column) else None
        return Risk(
            op.kind,
            f"{where} changes the type of {table}.{column}: "
            f"{_count(rows)} non-null values may be cast or truncated",
            table=table,
            column=column,
            rows=rows,
            step=step,
        )
    if op.kind in ("drop_constraint", "drop_index"):
        word = "constraint" if op.kind == "drop_constraint" else "index"
        return Risk(
            op.kind,
            f"{where} drops {word} {op.name or '(unnamed)'}"
            + (f" on {table}" if table else ""),
            table=table,
            step=step,
        )
    if op.kind == "drop_type":
        return Risk(op.kind, f"{where} runs {op.sql}", step=step)
    if op.kind == "raw_sql":
        text = f": {_short(op.sql)}" if op.sql else " (built at run time)"
        return Risk(op.kind, f"{where} runs SQL dbr cannot classify{text}", step=step)
    if op.kind == "autocommit":
        return Risk(
            op.kind,
            f"{where} commits part of its work itself "
            "(autocommit_block): if the step fails later, that part stays",
            step=step,
        )
    if op.kind == "uses_connection":
        return Risk(
            op.kind,
            f"{where} uses the live connection (op.get_bind()); "
            "what it does depends on the data",
            step=step,
        )
    if op.kind in ("drop_table", "drop_column", "delete_rows"):
        return Risk(
            op.kind,
            f"{where} {op.kind.replace('_', 's ', 1)} whose name "
            "is computed at run time",
            severity="critical",
            step=step,
        )
    return None


def _severity(rows: int | None, table: str, critical_tables: tuple[str, ...]) -> str:
    if rows is None or rows > 0 or table in critical_tables:
        return "critical"
    return "warning"


def _count(rows: int | None) -> str:
    return "an uncounted number of" if rows is None else f"{rows:,}"


def _bytes(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _short(sql: str, width: int = 80) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
