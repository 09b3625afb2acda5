"""The static reading of downgrade(): what an operator is warned about."""

from __future__ import annotations

from core.migrations.analysis import analyse_source, classify_sql


def module(downgrade: str, upgrade: str = "    pass") -> str:
    return (
        f'"""doc"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n\n'
        f"def upgrade():\n{upgrade}\n\n\ndef downgrade():\n{downgrade}\n"
    )


def kinds(source: str) -> list[tuple[str, str | None, str | None]]:
    return [(o.kind, o.table, o.column) for o in analyse_source(source).operations]


def test_pass_and_docstring_only_are_empty() -> None:
    assert analyse_source(module("    pass")).empty
    assert analyse_source(module('    """Nothing to undo."""\n    pass')).empty
    assert not analyse_source(module('    op.drop_table("a")')).empty


def test_raise_is_reported() -> None:
    result = analyse_source(module('    raise NotImplementedError("one way")'))
    assert result.raises and not result.empty


def test_drops_with_positional_and_keyword_names() -> None:
    source = module(
        '    op.drop_index("ix_a", table_name="a")\n'
        '    op.drop_constraint("fk_a_b", "a", type_="foreignkey")\n'
        '    op.drop_column(table_name="a", column_name="c")\n'
        '    op.drop_table("a")\n'
        '    op.alter_column("b", "d", type_=sa.String(10), existing_type=sa.Text)\n'
        '    op.alter_column("b", "e", new_column_name="f")\n'
    )
    result = analyse_source(source)
    assert kinds(source) == [
        ("drop_index", "a", None),
        ("drop_constraint", "a", None),
        ("drop_column", "a", "c"),
        ("drop_table", "a", None),
        ("alter_type", "b", "d"),
    ]
    assert [o.name for o in result.operations[:2]] == ["ix_a", "fk_a_b"]
    assert [o.destructive for o in result.operations] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert result.operations[3].line == 14  # the line in the revision file


def test_batch_alter_table_contents_name_their_table() -> None:
    source = module(
        '    with op.batch_alter_table("orders") as batch_op:\n'
        '        batch_op.drop_column("status")\n'
        '        batch_op.drop_index("ix_status")\n'
    )
    result = analyse_source(source)
    assert kinds(source) == [
        ("drop_column", "orders", "status"),
        ("drop_index", "orders", None),
    ]
    assert all(o.batch for o in result.operations)


def test_raw_sql_is_classified_or_marked_unclassified() -> None:
    source = module(
        '    op.execute("DROP TABLE IF EXISTS legacy")\n'
        '    op.execute(sa.text("ALTER TABLE a DROP COLUMN b"))\n'
        '    op.execute("DROP TYPE mood")\n'
        '    op.execute("UPDATE a SET b = 1")\n'
        "    op.execute(build_sql())\n"
    )
    assert kinds(source) == [
        ("drop_table", "legacy", None),
        ("drop_column", "a", "b"),
        ("drop_type", None, None),
        ("raw_sql", None, None),
        ("raw_sql", None, None),
    ]
    assert classify_sql("delete from orders where x") == ("delete_rows", "orders", None)
    assert classify_sql("CREATE INDEX ix ON a (b)")[0] == "sql"


def test_use_of_the_live_connection_is_noted() -> None:
    source = module(
        '    bind = op.get_bind()\n    rows = bind.execute(sa.text("select 1")).all()\n'
    )
    assert [k for k, _, _ in kinds(source)] == ["uses_connection"]


def test_a_string_at_column_zero_falls_back_to_the_whole_module() -> None:
    source = module('    op.execute("""\nDROP TABLE a\n""")\n    op.drop_table("b")')
    assert kinds(source) == [("drop_table", "a", None), ("drop_table", "b", None)]


def test_missing_downgrade_is_reported() -> None:
    result = analyse_source('"""doc"""\n\ndef upgrade():\n    pass\n')
    assert not result.found and result.problem == "no downgrade() function"


def test_sql_that_only_adds_or_reads_is_not_flagged() -> None:
    for statement in (
        "select pg_advisory_lock(1)",
        "ALTER TABLE a ADD COLUMN b int",
        "alter table a alter column b set default 1",
        "analyze a",
    ):
        assert classify_sql(statement)[0] == "sql", statement
    for statement in (
        "UPDATE a SET b = 1",
        "alter table a alter column b set data type int",
    ):
        assert classify_sql(statement)[0] == "raw_sql", statement
