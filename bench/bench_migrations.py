"""Benchmark: `dbr migrations history` and `plan` against `alembic history`.

    .venv/bin/python bench/bench_migrations.py [--revisions 2000] [--runs 3]

Writes a generated Alembic project of N revisions (branches every 40 revisions,
merged 10 revisions later, and a few depends_on) and an SQLite database stamped
at its head, then times each command as an operator runs it: a fresh process,
best of --runs interleaved runs after one warm-up each (wall and CPU time;
CPU is the steadier number on a shared machine). The ratio
is dbr's time over alembic's; the floor is 1.5.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLOOR = 1.5

ENV = """
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def run(connection):
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        run(connection)
"""

REVISION = '''"""{message}

Revision ID: {rev}
Revises: {down_text}
Create Date: 2026-01-01 00:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = {depends!r}


def upgrade():
    op.create_table("t_{rev}", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(40)))
    op.create_index("ix_t_{rev}_name", "t_{rev}", ["name"])


def downgrade():
    op.drop_index("ix_t_{rev}_name", table_name="t_{rev}")
    op.drop_table("t_{rev}")
'''


def generate(folder: Path, count: int) -> tuple[Path, str]:
    """The project; returns its alembic.ini and the one head."""
    versions = folder / "migrations" / "versions"
    versions.mkdir(parents=True)
    (folder / "migrations" / "env.py").write_text(ENV)
    (folder / "migrations" / "script.py.mako").write_text("")
    database = folder / "bench.db"
    (folder / "alembic.ini").write_text(
        f"[alembic]\nscript_location = %(here)s/migrations\npath_separator = os\n"
        f"sqlalchemy.url = sqlite:///{database}\n"
    )
    main: str | None = None  # the tip of the main line
    side: str | None = None  # the tip of the open side branch, if any
    for number in range(count):
        rev = f"{number:04x}a{number % 7}"
        depends = None
        if number % 40 == 1 and main is not None:
            down, side, message = main, rev, "start a side branch"
        elif side is not None and number % 40 == 10:
            down, main, side = (main, side), rev, None
            message = "merge the side branch"
        elif side is not None and number % 2 == 0:
            down, side, message = side, rev, "work on the side branch"
        else:
            down, main, message = main, rev, "work on the main line"
            if number % 97 == 0 and number > 200:
                depends = f"{number - 150:04x}a{(number - 150) % 7}"
        down_text = ", ".join(down) if isinstance(down, tuple) else (down or "")
        (versions / f"{rev}_bench.py").write_text(
            REVISION.format(
                rev=rev,
                down=down,
                down_text=down_text,
                depends=depends,
                message=message,
            )
        )
    if side is not None:  # close the last branch so there is one head
        rev = f"{count:04x}ff"
        (versions / f"{rev}_bench.py").write_text(
            REVISION.format(
                rev=rev,
                down=(main, side),
                down_text=f"{main}, {side}",
                depends=None,
                message="merge the last side branch",
            )
        )
        main = rev
    return folder / "alembic.ini", main


def measure(
    commands: dict[str, list[str]], runs: int, cwd: Path
) -> dict[str, tuple[float, float]]:
    """Best wall and CPU seconds of each command over runs, after one warm-up.

    The commands take turns, so a busy machine slows each of them alike. dbr's
    analysis cache lives in cwd, so the run leaves nothing in the user's folders.
    """
    env = {**os.environ, "DBR_CACHE_DIR": str(cwd / "cache")}
    for args in commands.values():
        first = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, env=env, check=False
        )
        if first.returncode != 0:
            sys.exit(f"{' '.join(args)} failed:\n{first.stderr[-2000:]}")
    best = {name: (float("inf"), float("inf")) for name in commands}
    for _ in range(runs):
        for name, args in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(args, cwd=cwd, capture_output=True, env=env, check=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (
                after.ru_stime - before.ru_stime
            )
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbr-bench-") as folder:
        root = Path(folder)
        ini, head = generate(root, options.revisions)
        (root / "dbr.toml").write_text(
            f'[state]\nurl = "sqlite:///{root / "state.db"}"\n\n[targets.bench]\n'
            f'url = "sqlite:///{root / "bench.db"}"\nalembic = "{ini}"\n'
        )
        alembic = [str(BIN / "alembic"), "-c", str(ini)]
        subprocess.run([*alembic, "stamp", "heads"], check=True, capture_output=True)
        dbr = [str(BIN / "dbr"), "--config", str(root / "dbr.toml"), "migrations"]

        commands = {
            "alembic history": [*alembic, "history"],
            "dbr migrations history": [*dbr, "history", "bench"],
            "dbr migrations history --json": [*dbr, "history", "bench", "--json"],
            "dbr migrations plan --to -10": [*dbr, "plan", "bench", "--to", "-10"],
        }
        best = measure(commands, options.runs, root)
        base_wall, base_cpu = best.pop("alembic history")
        print(
            f"{options.revisions} revisions (head {head}); best of {options.runs} "
            "interleaved runs, each a fresh process"
        )
        print(f"  {'':<32} {'wall':>8} {'ratio':>7}   {'cpu':>7} {'ratio':>7}")
        print(
            f"  {'alembic history':<32} {base_wall:7.2f}s {1:6.2f}x   "
            f"{base_cpu:6.2f}s {1:6.2f}x"
        )
        worst = 0.0
        for name, (wall, cpu) in best.items():
            worst = max(worst, wall / base_wall)
            print(
                f"  {name:<32} {wall:7.2f}s {wall / base_wall:6.2f}x   "
                f"{cpu:6.2f}s {cpu / base_cpu:6.2f}x"
            )
        verdict = "within" if worst <= FLOOR else "ABOVE"
        print(f"worst wall-time ratio {worst:.2f}x: {verdict} the floor of {FLOOR}x")
        return 0 if worst <= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
