"""The README's walkthrough on Pagila, run exactly as written, on real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN, need_server, sample, unique_name

ROOT = Path(__file__).resolve().parents[1]


def walkthrough_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- walkthrough -->")[1].split("<!-- /walkthrough -->")[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 4, "the README walkthrough lost its commands"
    return "\n".join(blocks)


@pytest.fixture
def pagila_name() -> str:
    need_server(PG_ADMIN, "PostgreSQL")
    sample("pagila/pagila-schema.sql")
    name = unique_name("dbr_pagila")
    yield name
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def test_the_readme_walkthrough_runs_as_written(
    pagila_name: str, tmp_path: Path
) -> None:
    workspace = tmp_path / "pagila-dbr"
    env = {
        **os.environ,
        "DB": pagila_name,
        "WS": str(workspace),
        "PAGILA": str(sample("pagila/pagila-data.sql").parent),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough_script()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout

    # The preview named the table it drops and the rows it holds.
    assert re.search(r"drops table rental_feedback: \d{3} rows", out), out
    assert "SUCCEEDED" in out

    url = sa.engine.make_url(PG_ADMIN).set(database=pagila_name)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("select version_num from alembic_version"))
        assert [row[0] for row in version] == ["a1"]
        tables = sa.inspect(conn).get_table_names()
        assert "rental_feedback" not in tables and "rental" in tables
        gold = conn.execute(
            sa.text("select count(*) from customer where tier = 'gold'")
        ).scalar()
        assert gold > 0
    engine.dispose()

    def dbr(*args: str) -> object:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "console.cli",
                "--config",
                str(workspace / "dbr.toml"),
                *args,
                "--json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)

    log = dbr("log", "pagila")
    kinds = [entry["kind"] for entry in log]
    assert kinds[0] == "migration.downgrade" and log[0]["status"] == "succeeded"
    assert "migration.upgrade" in kinds and "backup.create" in kinds
    backups = dbr("backups", "list", "pagila")
    by_hand = [b for b in backups if b["label"] == "after the release"]
    safety = [b for b in backups if b["pinned"]]
    assert len(by_hand) == 1 and not by_hand[0]["pinned"]
    # One before the upgrade (its UPDATE changes rows), one before the downgrade.
    assert len(safety) == 2 and len(backups) == 3
