"""Real Alembic projects written into a temporary folder for the migration tests."""

from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from core.config import TargetConfig
from core.targets import Target

ENV_USES_CONNECTION = """
from logging.config import fileConfig
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
BATCH = {batch}


def offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      literal_binds=True, render_as_batch=BATCH)
    with context.begin_transaction():
        context.run_migrations()


def online():
    connection = config.attributes.get("connection")
    if connection is None:
        engine = engine_from_config(config.get_section(config.config_ini_section),
                                    prefix="sqlalchemy.", poolclass=pool.NullPool)
        with engine.connect() as connection:
            context.configure(connection=connection, render_as_batch=BATCH)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, render_as_batch=BATCH)
    with context.begin_transaction():
        context.run_migrations()


offline() if context.is_offline_mode() else online()
"""

# The stock `alembic init` shape: it ignores attributes and opens its own engine.
ENV_OWN_ENGINE = """
from logging.config import fileConfig
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {{}}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
"""

INI = """
[alembic]
script_location = %(here)s/migrations
path_separator = os
sqlalchemy.url = {url}

[loggers]
keys = root,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)s [%(name)s] %(message)s
"""


@dataclass
class Rev:
    """One revision file: ids, and the bodies of upgrade() and downgrade()."""

    id: str
    down: str | tuple[str, ...] | None
    upgrade: str = "pass"
    downgrade: str = "pass"
    message: str = ""
    branch_labels: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    extra: list[str] = field(default_factory=list)


def write_project(
    folder: Path,
    revisions: list[Rev],
    *,
    url: str = "sqlite://",
    own_engine: bool = False,
    batch: bool = False,
) -> Path:
    """An Alembic project; returns the path of its alembic.ini."""
    versions = folder / "migrations" / "versions"
    versions.mkdir(parents=True)
    env = (
        ENV_OWN_ENGINE.format()
        if own_engine
        else ENV_USES_CONNECTION.format(batch=batch)
    )
    (folder / "migrations" / "env.py").write_text(env)
    (folder / "migrations" / "script.py.mako").write_text("")
    # sqlalchemy.url is a placeholder dbr replaces; % would be read as interpolation.
    (folder / "alembic.ini").write_text(INI.format(url=url.replace("%", "%%")))
    for rev in revisions:
        (versions / f"{rev.id}_rev.py").write_text(_source(rev))
    return folder / "alembic.ini"


def _source(rev: Rev) -> str:
    return (
        f'"""{rev.message or "revision " + rev.id}\n\nRevision ID: {rev.id}\n'
        f'Create Date: 2026-01-02 03:04:05\n"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {rev.id!r}\ndown_revision = {rev.down!r}\n"
        f"branch_labels = {rev.branch_labels or None!r}\n"
        f"depends_on = {rev.depends_on or None!r}\n\n\n"
        f"def upgrade():\n{textwrap.indent(textwrap.dedent(rev.upgrade).strip(), '    ')}"
        f"\n\n\n"
        f"def downgrade():\n"
        f"{textwrap.indent(textwrap.dedent(rev.downgrade).strip(), '    ')}\n"
    )


def target_for(url: str, ini: Path, name: str = "t", **config: object) -> Target:
    return Target(TargetConfig(name=name, url=url, alembic=ini, **config))


def alembic_upgrade(url: str, ini: Path, revision: str = "heads") -> None:
    """Bring the database to revision with Alembic itself, as a deploy would."""
    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # env.py's fileConfig() would leave stderr handlers behind for later tests.
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        command.upgrade(config, revision)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name in ("alembic", "sqlalchemy"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).setLevel(logging.NOTSET)


def table_revs(*ids: str) -> list[Rev]:
    """A linear history where each revision creates table t_<id> with data."""
    revisions = []
    previous = None
    for rev_id in ids:
        revisions.append(
            Rev(
                rev_id,
                previous,
                upgrade=create_table(rev_id),
                downgrade=f'op.drop_table("t_{rev_id}")',
            )
        )
        previous = rev_id
    return revisions


def create_table(rev_id: str, rows: int = 3) -> str:
    values = ", ".join(f"{{'id': {i}, 'name': 'n{i}'}}" for i in range(1, rows + 1))
    return f"""
    table = op.create_table("t_{rev_id}", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(20)))
    op.bulk_insert(table, [{values}])
    """


def heads(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return []
            return sorted(
                conn.execute(
                    sa.text("select version_num from alembic_version")
                ).scalars()
            )
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
