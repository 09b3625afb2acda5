"""Schema snapshots: what they hold, how they compare, the row estimates."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core import snapshots
from core.state import Store
from tests.conftest import make_target

SCHEMA = [
    "create table parent (id integer primary key, name varchar(20) not null)",
    (
        "create table child (id integer primary key, parent_id integer not null "
        "references parent (id), note varchar(30), "
        "constraint uq_child_note unique (note))"
    ),
    "create index ix_child_note on child (note, id)",
    "insert into parent values (1, 'a'), (2, 'b')",
    "insert into child values (1, 1, 'x'), (2, 1, null), (3, 2, 'y')",
]


def build(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_snapshot_holds_structure_and_rows_and_diffs(
    any_url: str, state_url: str
) -> None:
    build(any_url)
    target = make_target(any_url)
    before = snapshots.take(target)
    child = before.tables["child"]
    assert child["rows"] == 3 and before.tables["parent"]["rows"] == 2
    assert set(child["columns"]) == {"id", "parent_id", "note"}
    assert child["columns"]["parent_id"]["nullable"] is False
    assert child["foreign_keys"] == ["(parent_id) -> parent(id)"]
    assert any(ix.startswith("ix_child_note (note, id)") for ix in child["indexes"])
    assert before.revision is None

    store = Store(state_url)
    snapshot_id = snapshots.record(store, before, label="before", operation_id="op1")
    engine = sa.create_engine(any_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "drop index ix_child_note"
            + (" on child" if any_url.startswith("mysql") else "")
        )
        conn.exec_driver_sql("alter table parent add column extra integer")
        conn.exec_driver_sql("delete from child where id = 3")
    engine.dispose()

    change = snapshots.diff(snapshots.load(store, snapshot_id), snapshots.take(target))
    assert change.tables_changed["parent"] == ["column extra added"]
    assert any(
        line.startswith("index ix_child_note") and line.endswith("removed")
        for line in change.tables_changed["child"]
    )
    assert change.rows == {"child": [3, 2]}
    assert [s.id for s in snapshots.snapshots(store, target.name)] == [snapshot_id]


@pytest.mark.parametrize("url_fixture", ["pg_url", "mysql_url"])
def test_row_estimates_come_from_the_server_statistics(
    url_fixture: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(url_fixture)
    build(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "analyze" + (" table" if "mysql" in url else "") + " parent"
        )
    with engine.connect() as conn:
        dialect = "mysql" if "mysql" in url else "postgresql"
        assert snapshots.estimate_rows(conn, dialect, "parent") == 2
    engine.dispose()


def test_a_snapshot_of_an_unreadable_database_is_a_clear_error(tmp_path: Path) -> None:
    target = make_target(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(Exception, match="cannot read the schema of 't'"):
        snapshots.take(target)
