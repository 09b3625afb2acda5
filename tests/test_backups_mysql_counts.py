"""MySQL/MariaDB row counts come from the dump itself, so they hold under writes."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import sqlalchemy as sa

from core import backups
from core.backups import tools
from core.backups.dumpers import MysqlRows
from core.targets import Target, TargetConfig
from tests.backups_helpers import workspace

TRICKY = [
    "create table `odd``name),(x` (id int primary key, s text, b blob, "
    "g int as (id * 2) stored)",
    "insert into `odd``name),(x` (id, s, b) values "
    "(1, 'a),(b', x'00272c28'), (2, 'it''s \\\\ ),( \\n line;', null), "
    "(3, '', x''), (4, '\\\\', 'q'), (5, ');\\n(', x'0a28')",
    "create table empty_one (x int)",
    "create table notes (id int primary key, body text)",
    "insert into notes values (1, '(('), (2, ''''), (3, 'end;'), (4, null)",
    "create view counted as select count(*) as c from notes",
]


def _dump(url: str) -> bytes:
    target = Target(TargetConfig(name="t", url=url))
    tool = tools.mysql_tool("dump")
    with target.client_call() as call:
        done = subprocess.run(
            [tool.path, *call.args, "--single-transaction", "--hex-blob", "--"]
            + [target.database],
            env=call.env,
            capture_output=True,
            check=True,
        )
    target.dispose()
    return done.stdout


def _counted(dump: bytes, piece: int) -> dict[str, int]:
    rows = MysqlRows()
    for at in range(0, len(dump), piece):
        rows(dump[at : at + piece])
    assert rows.unreadable is None
    return rows.counts


def test_the_rows_of_a_real_dump_are_counted_in_any_pieces(mysql_url: str) -> None:
    engine = sa.create_engine(mysql_url)
    with engine.begin() as conn:
        for statement in TRICKY:
            conn.execute(sa.text(statement))
    engine.dispose()
    expected = {"odd`name),(x": 5, "empty_one": 0, "notes": 4}

    dump = _dump(mysql_url)
    # MySQL's own mysqldump puts all of an INSERT's rows on its line.
    one_line = dump.replace(b"),\n(", b"),(").replace(b" VALUES\n(", b" VALUES (")
    assert one_line.count(b"),(") > dump.count(b"),(")  # the layout did change
    for layout in (dump, one_line):
        for piece in (1, 7, 4096, 1 << 18):
            assert _counted(layout, piece) == expected, piece


def test_an_insert_it_cannot_read_stops_the_count_and_says_so() -> None:
    rows = MysqlRows()
    rows(b"CREATE TABLE `a` (\n  `x` int\n);\nINSERT INTO `a` VALUES (1),(2);\n")
    rows(b"INSERT INTO `a` SELECT 1;\nINSERT INTO `a` VALUES (3);\n")
    assert rows.unreadable == "INSERT INTO `a` SELECT 1;"
    assert rows.counts == {"a": 2}


def test_a_backup_under_writes_holds_the_row_counts_of_its_own_dump(
    tmp_path: Path, mysql_url: str
) -> None:
    ws = workspace(tmp_path, mysql_url, "shop")
    target = ws.target("shop")
    with target.engine().begin() as conn:
        conn.execute(sa.text("create table orders (id int auto_increment primary key)"))
        conn.execute(sa.text("insert into orders values (), (), ()"))
    stop = threading.Event()
    written = []

    def write() -> None:  # an application inserting all along, one commit each
        with target.engine().connect() as conn:
            while not stop.is_set():
                conn.execute(sa.text("insert into orders values ()"))
                conn.commit()
                written.append(1)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        backup = backups.create_backup(ws, "shop")
    finally:
        stop.set()
        writer.join()
    assert len(written) > 10  # rows did arrive while the backup ran

    # A deep verification restores the dump into a scratch database and
    # compares its row counts with the manifest's.
    deep = backups.verify_backup(ws, backup.id, deep=True)
    assert deep.ok, deep.problems
    with target.engine().connect() as conn:
        now = conn.execute(sa.text("select count(*) from orders")).scalar_one()
    assert 3 <= backup.tables["orders"] < now
    ws.close()
