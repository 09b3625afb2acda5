"""Benchmark: `dbr watch` over 50 targets at a 1 s interval; CPU as a share of one core.

    .venv/bin/python bench/bench_watch.py [--seconds 60] [--targets 50] [--sqlite-only]

The targets are SQLite files, plus a few PostgreSQL and MariaDB databases on the
local servers when they answer (created with unique names and dropped afterwards).
The CPU of the `dbr watch` process (all its threads) is read from /proc once every
target has been sampled, and again at the end, so start-up is not counted. The
floor is 25% of one core.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.targets import make_engine

PG_ADMIN = os.environ.get(
    "DBR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN = os.environ.get(
    "DBR_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"
)
FLOOR = 0.25
PER_SERVER = 5


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def reachable(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


class Databases:
    """Uniquely named server databases made for the run, dropped afterwards."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []

    def make(self, admin: str) -> str:
        name = f"dbr_bench_{uuid.uuid4().hex[:10]}"
        engine = make_engine(admin)
        if admin.startswith("postgresql"):
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            quoted = f'"{name}"'
        else:
            quoted = f"`{name}`"
        with engine.begin() as conn:
            conn.execute(sa.text(f"create database {quoted}"))
        engine.dispose()
        url = sa.engine.make_url(admin).set(database=name)
        self.made.append((admin, name))
        with make_engine(url).begin() as conn:
            conn.execute(sa.text("create table orders (id integer primary key)"))
            conn.execute(sa.text("insert into orders values (1)"))
        return url.render_as_string(hide_password=False)

    def drop(self) -> None:
        for admin, name in self.made:
            engine = make_engine(admin)
            if admin.startswith("postgresql"):
                engine = engine.execution_options(isolation_level="AUTOCOMMIT")
                statement = f'drop database if exists "{name}" with (force)'
            else:
                statement = f"drop database if exists `{name}`"
            with engine.begin() as conn:
                conn.execute(sa.text(statement))
            engine.dispose()


def workspace(folder: Path, count: int, sqlite_only: bool, dbs: Databases) -> Path:
    urls: list[str] = []
    if not sqlite_only:
        for admin in (PG_ADMIN, MYSQL_ADMIN):
            if reachable(admin):
                urls += [dbs.make(admin) for _ in range(PER_SERVER)]
    while len(urls) < count:
        path = folder / f"t{len(urls)}.db"
        engine = make_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(sa.text("create table orders (id integer primary key)"))
            conn.execute(sa.text("insert into orders values (1)"))
        engine.dispose()
        urls.append(f"sqlite:///{path}")
    lines = [f'[state]\nurl = "sqlite:///{folder / "state.db"}"']
    for i, url in enumerate(urls[:count]):
        lines.append(f"""
[targets.t{i}]
url = "{url}"
critical_tables = ["orders"]
[targets.t{i}.health]
interval = 1
[[targets.t{i}.health.checks]]
name = "orders exist"
sql = "select count(*) from orders"
min = 1
[[targets.t{i}.triggers]]
name = "low"
score_below = 50
consecutive = 3
strategy = "notify"
mode = "suggest"
""")
    config = folder / "dbr.toml"
    config.write_text("\n".join(lines))
    return config


def run(seconds: float, count: int, sqlite_only: bool) -> float:
    dbs = Databases()
    with tempfile.TemporaryDirectory(prefix="dbr-bench-") as tmp:
        try:
            config = workspace(Path(tmp), count, sqlite_only, dbs)
            return measure(config, seconds, count)
        finally:
            dbs.drop()


def measure(config: Path, seconds: float, count: int) -> float:
    dbr = Path(sys.executable).with_name("dbr")
    process = subprocess.Popen(
        [str(dbr), "--config", str(config), "watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = [0]
    first_round = threading.Event()
    unhealthy = [0]

    def drain() -> None:
        for line in process.stdout:
            lines[0] += 1
            if "UNHEALTHY" in line or "inconclusive" in line:
                unhealthy[0] += 1
            if lines[0] >= count:
                first_round.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not first_round.wait(120):
            raise SystemExit("dbr watch did not sample every target within 120 s")
        start_cpu, start_wall, start_lines = (
            cpu_seconds(process.pid),
            time.monotonic(),
            lines[0],
        )
        time.sleep(seconds)
        end_cpu, end_wall, end_lines = (
            cpu_seconds(process.pid),
            time.monotonic(),
            lines[0],
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    wall = end_wall - start_wall
    share = (end_cpu - start_cpu) / wall
    print(f"dbr watch: {count} targets, 1 s interval, {wall:.0f} s measured")
    print(
        f"samples: {end_lines - start_lines} ({(end_lines - start_lines) / wall:.1f}"
        f"/s); not healthy: {unhealthy[0]}"
    )
    print(
        f"CPU: {end_cpu - start_cpu:.2f} s = {share:.1%} of one core "
        f"(floor: under {FLOOR:.0%}) -> {'PASS' if share < FLOOR else 'FAIL'}"
    )
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="how long to measure (default 60)"
    )
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument(
        "--sqlite-only", action="store_true", help="no databases on the local servers"
    )
    args = parser.parse_args()
    share = run(args.seconds, args.targets, args.sqlite_only)
    sys.exit(0 if share < FLOOR else 1)


if __name__ == "__main__":
    main()
