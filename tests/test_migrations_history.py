"""History, applied marks, graph flags and version-table problems on real projects."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import migrations
from core.errors import ConfigError, DbrError
from core.targets import make_engine
from tests.conftest import PG_ADMIN, unique_name
from tests.migrations_helpers import (
    Rev,
    alembic_upgrade,
    create_table,
    table_revs,
    target_for,
    write_project,
)


def graph() -> list[Rev]:
    """Two bases; a branches into b (@left) and c (@right), merged by d; y on
    base x depends on b."""
    return [
        Rev("a", None, upgrade=create_table("a")),
        Rev(
            "b",
            "a",
            upgrade=create_table("b"),
            downgrade='op.drop_table("t_b")',
            branch_labels=("left",),
        ),
        Rev(
            "c",
            "a",
            upgrade=create_table("c"),
            downgrade='op.drop_table("t_c")',
            branch_labels=("right",),
        ),
        Rev("d", ("b", "c"), message="merge left and right"),
        Rev("x", None, upgrade=create_table("x"), branch_labels=("other",)),
        Rev(
            "y",
            "x",
            upgrade='op.add_column("t_b", sa.Column("y", sa.Integer))',
            downgrade='op.drop_column("t_b", "y")',
            depends_on=("b",),
        ),
    ]


def test_linear_history_marks_what_is_applied(any_url: str, tmp_path: Path) -> None:
    ini = write_project(tmp_path, table_revs("r1", "r2", "r3"))
    alembic_upgrade(any_url, ini, "r2")
    result = migrations.history(target_for(any_url, ini))

    assert [r.revision for r in result.revisions] == ["r3", "r2", "r1"]
    assert [r.applied for r in result.revisions] == [False, True, True]
    assert [r.is_head for r in result.revisions] == [True, False, False]
    assert result.revisions[2].is_base
    assert result.current.heads == ["r2"] and result.current.script_heads == ["r3"]
    assert not result.current.at_head and result.current.problems == []
    dropped = result.revisions[0].downgrade.operations
    assert [(o.kind, o.table) for o in dropped] == [("drop_table", "t_r3")]
    assert result.revisions[0].date == "2026-01-02T03:04:05"


def test_branches_merges_bases_and_dependencies(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(tmp_path, graph())
    alembic_upgrade(sqlite_url, ini, "c")
    result = migrations.history(target_for(sqlite_url, ini))
    by_id = {r.revision: r for r in result.revisions}

    assert by_id["a"].is_branch_point and not by_id["d"].is_branch_point
    assert by_id["d"].is_merge and by_id["d"].down_revisions == ["b", "c"]
    assert by_id["d"].downgrade.empty
    assert by_id["x"].is_base and by_id["a"].is_base
    assert by_id["y"].depends_on == ["b"] and by_id["y"].is_head
    assert by_id["b"].branch_labels == ["left"]
    assert {r for r, rev in by_id.items() if rev.applied} == {"a", "c"}
    assert sorted(result.current.script_heads) == ["d", "y"]
    as_json = result.revisions[0].to_dict()
    assert {
        "revision",
        "down_revisions",
        "message",
        "applied",
        "is_head",
        "is_merge",
        "downgrade",
    } <= set(as_json)
    assert set(as_json["downgrade"]) >= {"empty", "operations"}


def test_version_table_problems_are_named(sqlite_url: str, tmp_path: Path) -> None:
    ini = write_project(tmp_path, graph())
    target = target_for(sqlite_url, ini)
    missing = migrations.current(target)
    assert [p.kind for p in missing.problems] == ["missing_version_table"]

    alembic_upgrade(sqlite_url, ini, "heads")
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("insert into alembic_version values ('f00d'), ('a')"))
    engine.dispose()
    found = migrations.current(target)
    kinds = {p.kind: p for p in found.problems}
    assert set(kinds) == {"unknown_revision", "not_heads"}
    assert kinds["unknown_revision"].revisions == ("f00d",)
    assert "older than the database" in kinds["unknown_revision"].message
    assert kinds["not_heads"].revisions == ("a",)
    with pytest.raises(DbrError, match="cannot plan"):
        migrations.plan(target, "-1")


def test_env_py_logging_setup_does_not_replace_dbrs(
    sqlite_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ini = write_project(tmp_path, table_revs("r1"))
    alembic_upgrade(sqlite_url, ini)
    capfd.readouterr()
    root = logging.getLogger()
    handlers = list(root.handlers)
    level = root.level
    plan = migrations.plan(target_for(sqlite_url, ini), "base")
    assert plan.steps and root.handlers == handlers and root.level == level
    # The project's alembic.ini logs INFO to stderr; under dbr it must stay quiet.
    assert "Context impl" not in capfd.readouterr().err


def test_missing_project_is_a_config_error(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no Alembic project"):
        migrations.history(target_for(sqlite_url, None))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not exist"):
        migrations.history(target_for(sqlite_url, tmp_path / "nowhere.ini"))


@pytest.fixture
def pg_role_url(pg_url: str) -> tuple[str, str]:
    """A role whose password holds % and URL-special characters, owning pg_url."""
    role = unique_name("dbr_role")
    password = "p%40w@rd:/#?&%s x"
    admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    database = sa.engine.make_url(pg_url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f"create role {role} login password '{password}'"))
        conn.exec_driver_sql(f'alter database "{database}" owner to {role}')
    url = sa.engine.make_url(pg_url).set(username=role, password=None)
    yield url.render_as_string(hide_password=False), password
    inside = make_engine(pg_url).execution_options(isolation_level="AUTOCOMMIT")
    with inside.connect() as conn:  # the role's tables live in the test database
        conn.exec_driver_sql(f"drop owned by {role}")
    inside.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'alter database "{database}" owner to postgres')
        conn.exec_driver_sql(f"drop role {role}")
    admin.dispose()


def test_passwords_with_percent_reach_an_env_py_with_its_own_engine(
    pg_role_url: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, password = pg_role_url
    monkeypatch.setenv("DBR_TEST_PW", password)
    ini = write_project(tmp_path, table_revs("r1", "r2"), own_engine=True)
    target = target_for(url, ini, password_env="DBR_TEST_PW")
    alembic_upgrade(target.url.render_as_string(hide_password=False), ini)

    result = migrations.history(target)
    assert result.current.heads == ["r2"]
    plan = migrations.plan(target, "-1")
    assert plan.steps[0].sql and "DROP TABLE t_r2" in plan.steps[0].sql
    assert password not in repr(plan.to_dict())
    assert os.environ["DBR_TEST_PW"] == password


def test_histories_of_two_targets_from_several_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    targets = []
    for name, ids in (("one", ("a1", "a2")), ("two", ("b1", "b2", "b3"))):
        url = f"sqlite:///{tmp_path / name}.db"
        ini = write_project(tmp_path / name, table_revs(*ids))
        alembic_upgrade(url, ini)
        targets.append(target_for(url, ini, name=name))
    with ThreadPoolExecutor(4) as pool:
        found = list(
            pool.map(lambda t: migrations.history(t).current.heads, targets * 4)
        )
    assert found == [["a2"], ["b3"]] * 4


def test_an_unreachable_database_is_named(tmp_path: Path) -> None:
    ini = write_project(tmp_path, table_revs("r1"))
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}"
    with pytest.raises(DbrError, match="cannot reach 't'"):
        migrations.history(target_for(url, ini))


def test_a_broken_env_py_or_revision_is_a_clear_error(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(tmp_path / "env", table_revs("r1"))
    env = tmp_path / "env" / "migrations" / "env.py"
    env.write_text("import app_models_that_are_not_here\n" + env.read_text())
    with pytest.raises(DbrError, match="env.py of 't' failed") as failed:
        migrations.history(target_for(sqlite_url, ini))
    assert "app_models_that_are_not_here" in failed.value.cause

    ini = write_project(tmp_path / "rev", table_revs("r1"))
    revision = next((tmp_path / "rev" / "migrations" / "versions").glob("*.py"))
    revision.write_text(revision.read_text() + "\nundefined_name\n")
    with pytest.raises(DbrError, match="cannot load the Alembic project"):
        migrations.history(target_for(sqlite_url, ini))


def test_analyses_are_cached_by_content(sqlite_url: str, tmp_path: Path) -> None:
    from core.migrations.cache import cache_dir

    ini = write_project(tmp_path, table_revs("r1", "r2"))
    target = target_for(sqlite_url, ini)
    first = migrations.history(target)
    assert len(list(cache_dir().glob("*.json"))) == 1
    assert [r.downgrade.to_dict() for r in migrations.history(target).revisions] == [
        r.downgrade.to_dict() for r in first.revisions
    ]

    revision = next((tmp_path / "migrations" / "versions").glob("r2_*.py"))
    revision.write_text(
        revision.read_text().replace('op.drop_table("t_r2")', 'op.drop_table("t_r9")')
    )
    again = migrations.history(target)
    assert again.revisions[0].downgrade.operations[0].table == "t_r9"


def test_a_row_that_only_depends_on_another_row_is_a_valid_head(
    sqlite_url: str, tmp_path: Path
) -> None:
    ini = write_project(
        tmp_path,
        [
            *table_revs("r0", "r1"),
            Rev("x", None, upgrade=create_table("x"), depends_on=("r1",)),
        ],
    )
    alembic_upgrade(sqlite_url, ini)
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # Alembic leaves both rows in such histories
        conn.execute(sa.text("delete from alembic_version"))
        conn.execute(sa.text("insert into alembic_version values ('r1'), ('x')"))
    engine.dispose()
    assert migrations.current(target_for(sqlite_url, ini)).problems == []
