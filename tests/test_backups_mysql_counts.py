"""MySQL/MariaDB row counts come from the dump itself, so they hold under writes."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import backups
from core.backups import stream, tools
from core.backups.dumpers import MysqlRows
from core.errors import Refused
from core.targets import Target, TargetConfig
from core.workspace import Workspace
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
    # Bodies of SQL that must not be read as rows or tables.
    "create trigger notes_ai after insert on notes for each row\n"
    "INSERT INTO `empty_one` (`x`) VALUES (NEW.id), (NEW.id + 1)",
    "create procedure fill()\nbegin\n"
    "INSERT INTO `notes` VALUES (99, 'p'), (98, 'q');\n"
    "CREATE TABLE `ghost` (a int);\nend",
    "create event tidy on schedule every 1 day do\n"
    "INSERT INTO `notes` VALUES (97, 'e')",
    # A body keeps its text as written: a string or a comment can hold lines
    # that look like the dump's own, its end included.
    "create procedure tricky()\nbegin\n  declare s text default '\n"
    "DELIMITER ;\nINSERT INTO `notes` VALUES (1),(2),(3);\n"
    "CREATE TABLE `ghost` (\nDELIMITER ;;\n';\n  /*\nDELIMITER ;\n"
    "INSERT INTO `part1` VALUES (1),(2),(3),(4),(5);\nDELIMITER ;;\n  */\n"
    "  select s;\nend",
    # Made without backslash escapes, 'C:\' is a whole string.
    "set session sql_mode = concat(@@sql_mode, ',NO_BACKSLASH_ESCAPES')",
    "create trigger notes_bu before update on notes for each row\nset @path = 'C:\\'",
    "set session sql_mode = replace(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
    # "--" then any control character starts a comment.
    "create procedure dashes()\nbegin\n  --\x0c'\n  select 'x;;\nDELIMITER ;\n"
    "INSERT INTO `notes` VALUES (7),(8);\nCREATE TABLE `ghost2` (\n';\nend",
    # A MERGE table has no rows of its own; a versioned one has its current rows.
    "create table part1 (a int) engine=myisam",
    "create table part2 (a int) engine=myisam",
    "insert into part1 values (1), (2)",
    "insert into part2 values (3)",
    "create table allparts (a int) engine=merge union=(part1, part2)",
    "create table hist (id int primary key, v int) with system versioning",
    "insert into hist values (1, 1), (2, 2)",
    "update hist set v = 3 where id = 1",
    # With ANSI_QUOTES, "a\" is a whole name.
    "set session sql_mode = concat(@@sql_mode, ',ANSI_QUOTES')",
    'create trigger part1_bi before insert on part1 for each row set @"a\\" = 1',
    "set session sql_mode = replace(@@sql_mode, 'ANSI_QUOTES', '')",
    'create trigger part2_bi before insert on part2 for each row set @b = "\\""',
]


def _shop(tmp_path: Path, url: str, *statements: str) -> tuple[Workspace, Target]:
    """A workspace whose target "shop" is the database at url, after statements."""
    ws = workspace(tmp_path, url, "shop")
    target = ws.target("shop")
    with target.engine().begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    return ws, target


def _dump(url: str) -> bytes:
    target = Target(TargetConfig(name="t", url=url))
    tool = tools.mysql_tool("dump")
    with target.client_call() as call:
        done = subprocess.run(
            [tool.path, *call.args, "--single-transaction", "--hex-blob"]
            + ["--routines", "--events", "--", target.database],
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
    expected = {
        "odd`name),(x": 5,
        "empty_one": 0,
        "notes": 4,
        "part1": 2,
        "part2": 1,
        "allparts": 0,  # in the dump; the manifest leaves it out
        "hist": 2,
    }

    dump = _dump(mysql_url)
    # MySQL's own mysqldump puts all of an INSERT's rows on its line.
    one_line = dump.replace(b"),\n(", b"),(").replace(b" VALUES\n(", b" VALUES (")
    assert one_line.count(b"),(") > dump.count(b"),(")  # the layout did change
    for layout in (dump, one_line):
        for piece in (1, 7, 4096, 1 << 18):
            assert _counted(layout, piece) == expected, piece


def test_a_backup_counts_what_a_restore_counts(tmp_path: Path, mysql_url: str) -> None:
    ws, _ = _shop(tmp_path, mysql_url, *TRICKY)
    backup = backups.create_backup(ws, "shop")
    assert backup.tables["hist"] == 2 and backup.tables["notes"] == 4
    assert "allparts" not in backup.tables and "ghost" not in backup.tables
    deep = backups.verify_backup(ws, backup.id, deep=True)
    assert deep.ok, deep.problems
    ws.close()


def test_a_failed_match_on_doubled_backticks_is_quick() -> None:
    # Each `` could be read as one name's end and the next one's start: a
    # pattern that tried every split took hours here (2 ** 64 ways).
    line = b"INSERT INTO `log` (`" + b"``" * 64 + b"`) SELECT NEW.a;\n"
    assert MysqlRows._INSERT.match(line) is None


def test_an_insert_it_cannot_read_stops_the_count_and_says_so() -> None:
    rows = MysqlRows()
    rows(b"CREATE TABLE `a` (\n  `x` int\n);\nINSERT INTO `a` VALUES (1),(2);\n")
    rows(b"INSERT INTO `a` SELECT 1;\nINSERT INTO `a` VALUES (3);\n")
    big = b"INSERT INTO `a` VALUES (0x" + b"AB" * 5000 + b");\n"
    rows(big)
    assert rows.unreadable == "INSERT INTO `a` SELECT 1;"
    assert rows.counts == {"a": 2}
    # Statements are still measured: a restore checks the server takes them.
    assert rows.longest == len(big)


def test_a_backup_under_writes_holds_the_row_counts_of_its_own_dump(
    tmp_path: Path, mysql_url: str
) -> None:
    ws, target = _shop(
        tmp_path,
        mysql_url,
        "create table orders (id int auto_increment primary key)",
        "insert into orders values (), (), ()",
    )
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


def test_a_statement_the_server_would_refuse_stops_the_restore_before_it_starts(
    tmp_path: Path, mysql_url: str
) -> None:
    ws, target = _shop(
        tmp_path,
        mysql_url,
        "create table files (id int primary key, body longblob)",
        "insert into files values (1, 'small')",
    )
    with target.engine().begin() as conn:
        allowed = conn.execute(sa.text("select @@global.max_allowed_packet")).scalar()
        if allowed > 256 * 2**20:
            pytest.skip(f"max_allowed_packet is {allowed} here: the row would be huge")
        # Grown in place: the dump writes it in hex, twice the server's limit.
        conn.execute(
            sa.text("update files set body = repeat('x', :n) where id = 1"),
            {"n": allowed // 2 + 1},
        )
        conn.execute(sa.text("insert into files values (2, 'kept')"))
    backup = backups.create_backup(ws, "shop")
    assert backup.manifest["requires"]["max_allowed_packet"] > allowed
    with target.engine().begin() as conn:
        conn.execute(sa.text("delete from files where id = 2"))

    with pytest.raises(Refused) as refused:
        backups.plan_restore(ws, backup.id)
    assert "more than the server's max_allowed_packet" in refused.value.cause
    assert "SET GLOBAL max_allowed_packet" in refused.value.cause
    with target.engine().connect() as conn:  # nothing was touched
        assert conn.execute(sa.text("select count(*) from files")).scalar() == 1
    ws.close()


def test_a_client_quoting_a_huge_statement_is_cut_to_its_ends() -> None:
    stderr = "-" * 14 + "\nINSERT INTO `files` VALUES (1,0x" + "AB" * 100_000 + ")\n"
    stderr += "ERROR 1153 (08S01) at line 38: Got a packet bigger than allowed\n"
    said = stream.describe_stderr(stderr)
    assert len(said) < 600 and said.endswith("Got a packet bigger than allowed")
    assert "INSERT INTO `files` VALUES (1,0xABAB" in said and "ABAB)" in said
