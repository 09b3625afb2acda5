"""Benchmark: `dbr backups create/restore` against plain pg_dump/pg_restore.

Builds a PostgreSQL database of --size GB from Pagila (payment and rental rows
replicated), then times in one run:

  (a) pg_dump -Fc -f F, then sha256sum F        the naive way
  (b) pg_dump -Fc -Z0 -f F                       the server's extraction speed
  dbr backups create                             with dbr's peak memory
  pg_restore -d DB F (default -Fc file)          into a fresh database
  dbr backups restore ID --into DB               into a fresh database

Each restore starts after a CHECKPOINT, so that neither pays for the other's
writes; --repeat N runs every measurement N times, alternating, and compares
medians.

Floors: create <= 0.3x (a) and <= 1.1x (b); peak memory < 100 MB;
restore <= 0.8x pg_restore. Not part of the test suite: it takes minutes.

    .venv/bin/python bench/bench_backups.py            # 1 GB
    .venv/bin/python bench/bench_backups.py --size 0.1 # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ADMIN = os.environ.get(
    "DBR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pagila"
DBR = [sys.executable, "-c", "from console.cli import entry; entry()"]


def admin() -> sa.Engine:
    return sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")


def pg_env(database: str) -> dict[str, str]:
    url = sa.engine.make_url(ADMIN)
    env = dict(
        os.environ,
        PGHOST=url.host or "127.0.0.1",
        PGPORT=str(url.port or 5432),
        PGUSER=url.username or "postgres",
        PGDATABASE=database,
    )
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def url_of(database: str) -> str:
    return (
        sa.engine.make_url(ADMIN)
        .set(database=database)
        .render_as_string(hide_password=False)
    )


def build(database: str, gigabytes: float) -> int:
    """Pagila, grown by copies of its payment and rental rows; returns its size."""
    with admin().connect() as conn:
        conn.execute(sa.text(f'create database "{database}"'))
    for part in ("pagila-schema.sql", "pagila-data.sql"):
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(DATA / part)],
            env=pg_env(database),
            check=True,
            capture_output=True,
        )
    engine = sa.create_engine(url_of(database), isolation_level="AUTOCOMMIT")
    wanted = int(gigabytes * 1024**3)
    copy = 0
    with engine.connect() as conn:
        while (
            size := conn.execute(
                sa.text("select pg_database_size(current_database())")
            ).scalar_one()
        ) < wanted:
            copy += 1
            # Copies with their own times and amounts: real data does not repeat
            # itself, and how well it compresses decides what compression costs.
            conn.execute(
                sa.text(
                    "insert into rental (rental_date, inventory_id, customer_id, "
                    "return_date, staff_id) select rental_date + make_interval(secs => "
                    ":c * 100000 + rental_id), inventory_id, customer_id, return_date "
                    "+ make_interval(secs => (random() * 86400)::int), staff_id "
                    "from rental where rental_id <= 16049"
                ),
                {"c": copy},
            )
            conn.execute(
                sa.text(
                    "insert into payment (customer_id, staff_id, rental_id, amount, "
                    "payment_date) select customer_id, staff_id, rental_id, "
                    "round((random() * 12)::numeric, 2), date_trunc('month', "
                    "payment_date) + make_interval(secs => (random() * 27 * 86400)::int)"
                    " from payment, generate_series(1, 20) where payment_id <= 32098"
                )
            )
            print(f"  growing: {size / 1024**2:,.0f} MB", file=sys.stderr)
        conn.execute(sa.text("vacuum analyze"))
        size = conn.execute(
            sa.text("select pg_database_size(current_database())")
        ).scalar_one()
    engine.dispose()
    return size


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of a command and the children it waited for."""
    start = time.monotonic()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - start
    if process.returncode != 0:
        raise SystemExit(f"{args[0]} failed with status {process.returncode}")
    return elapsed, usage.ru_maxrss * 1024


def fresh(database: str) -> None:
    """An empty database, after a checkpoint: neither restore pays for the
    writes of the one before it."""
    with admin().connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{database}" with (force)'))
        conn.execute(sa.text(f'create database "{database}"'))
        conn.execute(sa.text("checkpoint"))


def drop(database: str) -> None:
    with admin().connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{database}" with (force)'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=float, default=1.0, help="database size in GB (default 1.0)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every measurement this many times, alternating, and compare "
        "medians (default 1)",
    )
    parser.add_argument(
        "--database",
        help="use this grown database as it is "
        "(kept afterwards) instead of building one",
    )
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    source, into_pg, into_dbr = (
        args.database or f"dbr_bench_{tag}",
        f"dbr_bench_{tag}_r1",
        f"dbr_bench_{tag}_r2",
    )
    work = Path(tempfile.mkdtemp(prefix="dbr-bench-"))
    try:
        if args.database:
            with sa.create_engine(url_of(source)).connect() as conn:
                size = conn.execute(
                    sa.text("select pg_database_size(current_database())")
                ).scalar_one()
        else:
            print(
                f"building {args.size} GB from Pagila in {source} ...", file=sys.stderr
            )
            size = build(source, args.size)
        env = pg_env(source)
        config = work / "dbr.toml"
        config.write_text(
            f'[state]\nurl = "sqlite:///{work / "state.db"}"\n'
            f'[targets.bench]\nurl = "{url_of(source)}"\n'
            f'backup_dir = "{work / "backups"}"\n'
        )
        default_file, raw_file = work / "default.dump", work / "z0.dump"

        a_dumps, a_sums, b_dumps, creates, peak = [], [], [], [], 0
        for _ in range(args.repeat):
            a_dumps.append(timed(["pg_dump", "-Fc", "-f", str(default_file)], env)[0])
            a_sums.append(timed(["sha256sum", str(default_file)])[0])
            b_dumps.append(
                timed(["pg_dump", "-Fc", "-Z0", "-f", str(raw_file)], env)[0]
            )
            raw_file.unlink()
            took, peak_rss = timed(
                [*DBR, "--config", str(config), "backups", "create", "bench"]
            )
            creates.append(took)
            peak = max(peak, peak_rss)
        a_dump, a_sum = statistics.median(a_dumps), statistics.median(a_sums)
        b_dump, create = statistics.median(b_dumps), statistics.median(creates)
        listing = subprocess.run(
            [*DBR, "--config", str(config), "backups", "list", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        backup = json.loads(listing)[0]
        # Verified once beforehand, so the restore's preflight is a checksum pass.
        subprocess.run(
            [*DBR, "--config", str(config), "backups", "verify", backup["id"]],
            check=True,
            stdout=subprocess.DEVNULL,
        )

        restores_pg, restores_dbr, restore_peak = [], [], 0
        for _ in range(args.repeat):
            fresh(into_pg)
            restores_pg.append(
                timed(
                    ["pg_restore", "-d", into_pg, str(default_file)], pg_env(into_pg)
                )[0]
            )
            drop(into_pg)
            fresh(into_dbr)
            took, peak_rss = timed(
                [
                    *DBR,
                    "--config",
                    str(config),
                    "backups",
                    "restore",
                    backup["id"],
                    "--into",
                    url_of(into_dbr),
                    "--yes",
                ]
            )
            restores_dbr.append(took)
            restore_peak = max(restore_peak, peak_rss)
            drop(into_dbr)
        restore_pg = statistics.median(restores_pg)
        restore_dbr = statistics.median(restores_dbr)

        a = a_dump + a_sum
        print(f"\ndatabase: {size / 1024**3:.2f} GB (Pagila grown)")
        print(
            f"(a) pg_dump -Fc + sha256sum: {a:6.1f} s  ({a_dump:.1f} + {a_sum:.1f}),"
            f" file {default_file.stat().st_size / 1024**2:,.0f} MB"
        )

        def shown(median: float, times: list[float]) -> str:
            runs = (
                ""
                if len(times) == 1
                else " (median of " + " ".join(f"{t:.1f}" for t in times) + ")"
            )
            return f"{median:6.1f} s{runs}"

        print(f"(b) pg_dump -Fc -Z0:         {shown(b_dump, b_dumps)}")
        print(
            f"dbr backups create:          {shown(create, creates)}, file "
            f"{backup['size'] / 1024**2:,.0f} MB, peak RSS {peak / 1024**2:.0f} MB"
        )
        print(f"pg_restore -d (default -Fc): {shown(restore_pg, restores_pg)}")
        print(
            f"dbr backups restore --into:  {shown(restore_dbr, restores_dbr)}, "
            f"peak RSS {restore_peak / 1024**2:.0f} MB"
        )
        checks = [
            ("create / (a)", create / a, 0.3),
            ("create / (b)", create / b_dump, 1.1),
            ("restore / pg_restore", restore_dbr / restore_pg, 0.8),
        ]
        print()
        for name, ratio, floor in checks:
            verdict = "ok" if ratio <= floor else "ABOVE FLOOR"
            print(f"{name:22} {ratio:5.2f}x  (floor {floor}x)  {verdict}")
        memory_ok = peak < 100 * 1024**2
        print(
            f"{'peak memory':22} {peak / 1024**2:5.0f} MB (floor 100 MB)  "
            f"{'ok' if memory_ok else 'ABOVE FLOOR'}"
        )
        return 0
    finally:
        for database in (
            (into_pg, into_dbr) if args.database else (source, into_pg, into_dbr)
        ):
            drop(database)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
