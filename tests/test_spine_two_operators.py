"""Two operators, two `dbr` processes, one target: the second is refused with exit 3."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
HELD = 4242

REVISION = """
from alembic import op

revision, down_revision, branch_labels, depends_on = "w1", None, None, None

def upgrade():
    # Waits until the test lets go of its advisory lock: a slow migration.
    op.execute("select pg_advisory_lock({held})")
    op.execute("select pg_advisory_unlock({held})")
    op.execute("create table waited (id integer primary key)")

def downgrade():
    op.drop_table("waited")
"""


def workspace(tmp_path: Path, url: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "alembic", "-q", "init", str(tmp_path / "migrations")],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    (tmp_path / "migrations" / "versions" / "w1.py").write_text(
        REVISION.format(held=HELD)
    )
    config = tmp_path / "dbr.toml"
    config.write_text(
        f'[state]\nurl = "sqlite:///state.db"\n\n[targets.shop]\n'
        f'url = "{url}"\nalembic = "alembic.ini"\n'
        'backup_dir = "backups"\n'
    )
    return config


def dbr(config: Path, *args: str, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "console.cli", "--config", str(config), *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def test_a_second_dbr_on_a_busy_target_is_refused_with_the_holder(
    tmp_path: Path, pg_url: str
) -> None:
    config = workspace(tmp_path, pg_url)
    engine = sa.create_engine(pg_url)
    with engine.connect() as blocker:
        blocker.execute(sa.text(f"select pg_advisory_lock({HELD})"))
        first = dbr(config, "migrations", "upgrade", "shop", "--yes")
        try:
            holder = None
            for _ in range(600):
                listed = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "console.cli",
                        "--config",
                        str(config),
                        "locks",
                        "--json",
                    ],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                )
                held = json.loads(listed.stdout or "[]")
                if held:
                    holder = held[0]
                    break
                assert first.poll() is None, first.communicate()
                time.sleep(0.1)
            assert holder is not None and holder["kind"] == "migration.upgrade"

            second = dbr(config, "backups", "create", "shop")
            out, err = second.communicate(timeout=120)
            assert second.returncode == 3, err
            assert "target 'shop' is locked" in err
            assert f"pid {first.pid}" in err and holder["user"] in err
            assert "since" in err and out == ""
        finally:
            blocker.execute(sa.text(f"select pg_advisory_unlock({HELD})"))
            blocker.commit()
        out, err = first.communicate(timeout=120)
    engine.dispose()
    assert first.returncode == 0, err
    assert "SUCCEEDED" in out
    assert not list((tmp_path / "backups").glob("*.zst"))
