"""What a revision's downgrade() does, read from its source without running it."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

# Operations that can lose data; drops of indexes and constraints lose none.
DESTRUCTIVE = {"drop_table", "drop_column", "alter_type", "raw_sql", "delete_rows"}
SQL_PATTERNS = (
    (
        re.compile(r"^\s*drop\s+table\s+(?:if\s+exists\s+)?([\w.\"`]+)", re.IGNORECASE),
        "drop_table",
    ),
    (
        re.compile(
            r"^\s*alter\s+table\s+([\w.\"`]+)\s+drop\s+(?:column\s+)?"
            r"(?:if\s+exists\s+)?([\w\"`]+)",
            re.IGNORECASE,
        ),
        "drop_column",
    ),
    (
        re.compile(
            r"^\s*(?:delete\s+from|truncate(?:\s+table)?)\s+([\w.\"`]+)", re.IGNORECASE
        ),
        "delete_rows",
    ),
    (
        re.compile(r"^\s*drop\s+index\s+(?:if\s+exists\s+)?([\w.\"`]+)", re.IGNORECASE),
        "drop_index",
    ),
    (
        re.compile(r"^\s*drop\s+type\s+(?:if\s+exists\s+)?([\w.\"`]+)", re.IGNORECASE),
        "drop_type",
    ),
)

# Statements that add or read and lose nothing; any other SQL is "raw_sql".
SAFE_SQL = re.compile(
    r"^\s*(create|comment|grant|insert|set|select|analyze|vacuum|refresh|"
    r"alter\s+table\s+[\w.\"`]+\s+(add|rename|alter\s+column\s+[\w\"`]+\s+set\s+default))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Operation:
    """One operation found in a downgrade()."""

    kind: str  # drop_table, drop_column, drop_constraint, drop_index, alter_type,
    # raw_sql (unclassified), delete_rows, drop_type, uses_connection, autocommit,
    # sql (adds or reads only)
    table: str | None = None
    column: str | None = None
    name: str | None = None
    sql: str | None = None
    line: int | None = None
    batch: bool = False

    @property
    def destructive(self) -> bool:
        return self.kind in DESTRUCTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.table,
            "column": self.column,
            "name": self.name,
            "sql": self.sql,
            "line": self.line,
            "batch": self.batch,
            "destructive": self.destructive,
        }


@dataclass
class Downgrade:
    """The static reading of one downgrade()."""

    found: bool = True
    empty: bool = False  # does nothing: irreversible in practice
    raises: bool = False
    operations: list[Operation] = field(default_factory=list)
    problem: str | None = None  # why it could not be read

    @property
    def destructive(self) -> bool:
        return any(o.destructive for o in self.operations)

    @property
    def autocommits(self) -> bool:
        """Part of it commits on its own (autocommit_block): no step transaction."""
        return any(o.kind == "autocommit" for o in self.operations)

    @property
    def uses_connection(self) -> bool:
        return any(o.kind == "uses_connection" for o in self.operations)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Downgrade:
        names = set(Operation.__dataclass_fields__)
        return cls(
            found=data["found"],
            empty=data["empty"],
            raises=data["raises"],
            problem=data["problem"],
            operations=[
                Operation(**{k: v for k, v in op.items() if k in names})
                for op in data["operations"]
            ],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "empty": self.empty,
            "raises": self.raises,
            "destructive": self.destructive,
            "problem": self.problem,
            "operations": [o.to_dict() for o in self.operations],
        }


def analyse_source(source: str, function: str = "downgrade") -> Downgrade:
    """Read the module-level downgrade() (or upgrade()) of a revision's source."""
    snippet = _function_source(source, function)
    if snippet is None:
        return Downgrade(found=False, problem=f"no {function}() function")
    text, first_line = snippet
    try:
        tree = ast.parse(text)
    except SyntaxError:
        # The slice was not self-contained (decorators, odd layout): read it all.
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            return Downgrade(found=False, problem=f"syntax error: {exc.msg}")
        first_line = 1
    found = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function),
        None,
    )
    if found is None:
        return Downgrade(found=False, problem=f"no {function}() function")
    return _analyse(found, first_line - 1)


def _function_source(source: str, name: str) -> tuple[str, int] | None:
    """The text of a top-level `def name(` up to the next top-level statement.

    Parsing one function instead of the whole module keeps `history` on a
    project of thousands of revisions about as fast as Alembic's own.
    """
    marker = f"\ndef {name}("
    start = source.find(marker)
    if start < 0:
        if not source.startswith(f"def {name}("):
            return None
        start = -1
    start += 1
    end = start
    while True:
        end = source.find("\n", end + 1)
        if end < 0 or end + 1 >= len(source):
            end = len(source)
            break
        following = source[end + 1]
        if following not in " \t\n#\r":
            break
    first_line = source.count("\n", 0, start) + 1
    return source[start:end], first_line


def _analyse(function: ast.FunctionDef, offset: int) -> Downgrade:
    body = list(function.body)
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
    ):
        body = body[1:]  # docstring
    result = Downgrade()
    result.empty = all(
        isinstance(n, ast.Pass)
        or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        for n in body
    )
    visitor = _Visitor(offset)
    for statement in body:
        visitor.visit(statement)
    result.raises = visitor.raises
    result.operations = visitor.operations
    return result


class _Visitor(ast.NodeVisitor):
    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.operations: list[Operation] = []
        self.raises = False
        self.batches: dict[str, str | None] = {}  # batch_op name -> table

    def visit_Raise(self, node: ast.Raise) -> None:
        self.raises = True
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            call = item.context_expr
            if (
                isinstance(call, ast.Call)
                and _method(call) == "batch_alter_table"
                and isinstance(item.optional_vars, ast.Name)
            ):
                self.batches[item.optional_vars.id] = _arg(call, 0, "table_name")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        method = _method(node)
        if method == "autocommit_block":
            self._add("autocommit", node.lineno + self.offset)
            return
        owner = _owner(node)
        if method is None or owner is None:
            return
        line = node.lineno + self.offset
        if owner in self.batches:
            self._batch_call(node, method, self.batches[owner], line)
        elif owner == "op":
            self._op_call(node, method, line)

    def _op_call(self, node: ast.Call, method: str, line: int) -> None:
        if method == "drop_table":
            self._add("drop_table", line, table=_arg(node, 0, "table_name"))
        elif method == "drop_column":
            self._add(
                "drop_column",
                line,
                table=_arg(node, 0, "table_name"),
                column=_arg(node, 1, "column_name"),
            )
        elif method == "drop_constraint":
            self._add(
                "drop_constraint",
                line,
                name=_arg(node, 0, "constraint_name"),
                table=_arg(node, 1, "table_name"),
            )
        elif method == "drop_index":
            self._add(
                "drop_index",
                line,
                name=_arg(node, 0, "index_name"),
                table=_kwarg(node, "table_name") or _arg(node, 1, "table_name"),
            )
        elif method == "alter_column" and _has_kwarg(node, "type_"):
            self._add(
                "alter_type",
                line,
                table=_arg(node, 0, "table_name"),
                column=_arg(node, 1, "column_name"),
            )
        elif method == "execute":
            self._execute(node, line)
        elif method == "get_bind" or method == "get_context":
            self._add("uses_connection", line)

    def _batch_call(
        self, node: ast.Call, method: str, table: str | None, line: int
    ) -> None:
        if method == "drop_column":
            self._add(
                "drop_column",
                line,
                table=table,
                column=_arg(node, 0, "column_name"),
                batch=True,
            )
        elif method == "drop_constraint":
            self._add(
                "drop_constraint",
                line,
                table=table,
                name=_arg(node, 0, "constraint_name"),
                batch=True,
            )
        elif method == "drop_index":
            self._add(
                "drop_index",
                line,
                table=table,
                name=_arg(node, 0, "index_name"),
                batch=True,
            )
        elif method == "alter_column" and _has_kwarg(node, "type_"):
            self._add(
                "alter_type",
                line,
                table=table,
                column=_arg(node, 0, "column_name"),
                batch=True,
            )
        elif method == "execute":
            self._execute(node, line, batch=True)

    def _execute(self, node: ast.Call, line: int, batch: bool = False) -> None:
        sql = _sql_text(node.args[0]) if node.args else None
        if sql is None:
            self._add("raw_sql", line, batch=batch)
            return
        for statement in (s for s in sql.split(";") if s.strip()):
            kind, table, column = classify_sql(statement)
            self._add(
                kind,
                line,
                table=table,
                column=column,
                sql=statement.strip(),
                batch=batch,
            )

    def _add(
        self,
        kind: str,
        line: int,
        table: str | None = None,
        column: str | None = None,
        **extra: Any,
    ) -> None:
        self.operations.append(
            Operation(kind=kind, table=table, column=column, line=line, **extra)
        )


def classify_sql(statement: str) -> tuple[str, str | None, str | None]:
    """(kind, table, column) of one raw SQL statement, raw_sql when unknown."""
    for pattern, kind in SQL_PATTERNS:
        match = pattern.match(statement)
        if match is None:
            continue
        names = [g.strip('"`') for g in match.groups()]
        table = names[0] if kind not in ("drop_index", "drop_type") else None
        column = names[1] if kind == "drop_column" else None
        return kind, table, column
    if SAFE_SQL.match(statement):
        return "sql", None, None
    return "raw_sql", None, None


def _method(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else None


def _owner(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id
    return None


def _arg(node: ast.Call, position: int, keyword: str) -> str | None:
    if len(node.args) > position:
        return _literal(node.args[position])
    return _kwarg(node, keyword)


def _kwarg(node: ast.Call, keyword: str) -> str | None:
    for kw in node.keywords:
        if kw.arg == keyword:
            return _literal(kw.value)
    return None


def _has_kwarg(node: ast.Call, keyword: str) -> bool:
    return any(kw.arg == keyword for kw in node.keywords)


def _literal(node: ast.expr) -> str | None:
    return (
        node.value
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        else None
    )


def _sql_text(node: ast.expr) -> str | None:
    """The SQL of op.execute("...") or op.execute(sa.text("..."))."""
    if isinstance(node, ast.Call) and node.args and _method(node) in ("text", None):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if _method(node) == "text" or name == "text":
            return _literal(node.args[0])
    return _literal(node)
