"""A target's Alembic project, loaded and run the way Alembic itself does.

The project's own env.py runs for every online or offline action. dbr hands it a
live connection in `config.attributes["connection"]` (the cookbook's convention) and
also sets `sqlalchemy.url`, escaped so that `%` and any character in a password
survive configparser, for env.py files that open their own engine.
"""

from __future__ import annotations

import io
import logging
import logging.config
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from core.errors import ConfigError, DbrError
from core.secrets import redact
from core.targets import Target, make_engine

log = logging.getLogger(__name__)

# Alembic installs `alembic.context` and `alembic.op` as module-level proxies, so
# two env.py runs at once in one process (console workers) would share them.
_ENV_LOCK = threading.RLock()

StepsFn = Callable[[tuple[str, ...], MigrationContext], Iterable[RevisionStep]]


@dataclass
class VersionState:
    """What the version table says, read through the project's env.py."""

    heads: tuple[str, ...]
    table: str
    schema: str | None
    exists: bool


class Project:
    """An Alembic project (config + scripts) bound to one target."""

    def __init__(self, target: Target, location: Path) -> None:
        self.target = target
        self.location = location
        self.config = _config(location)
        try:
            self.script = ScriptDirectory.from_config(self.config)
            self.script.revision_map.heads  # noqa: B018 - load every revision now
        except Exception as exc:  # revision files are the project's code
            if isinstance(exc, DbrError):
                raise
            raise DbrError(
                f"cannot load the Alembic project of {target.name!r}",
                cause=f"{location}: {_first_line(exc)}",
                hint="check `alembic` in dbr.toml and that `alembic history` works",
            ) from None

    def fresh_config(
        self, connection: Connection | None = None, output: io.StringIO | None = None
    ) -> Config:
        """A copy of the config for one run of env.py (attributes are per run)."""
        config = _config(self.location, output)
        url = self.target.url.render_as_string(hide_password=False)
        # configparser interpolates %; doubled, every character survives.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    def run_env(
        self,
        fn: StepsFn,
        *,
        connection: Connection | None = None,
        as_sql: bool = False,
        starting_rev: str | tuple[str, ...] | None = None,
        destination_rev: str | None = None,
        output: io.StringIO | None = None,
        dont_mutate: bool = False,
    ) -> None:
        """Run env.py with fn deciding which steps run (as alembic.command does)."""
        config = self.fresh_config(connection, output)
        options: dict[str, Any] = {
            "fn": fn,
            "as_sql": as_sql,
            "dont_mutate": dont_mutate,
        }
        if as_sql:
            options.update(starting_rev=starting_rev, destination_rev=destination_rev)
        with (
            _ENV_LOCK,
            _logging_kept(),
            EnvironmentContext(config, self.script, **options),
        ):
            self.script.run_env()

    def version_state(self, connection: Connection | None = None) -> VersionState:
        """The database's heads as env.py's own version-table settings see them."""
        seen: dict[str, Any] = {}

        def read(heads: tuple[str, ...], context: MigrationContext) -> list:
            self.check_database(context)
            inspector = sa.inspect(context.connection)
            seen["exists"] = inspector.has_table(
                context.version_table, schema=context.version_table_schema
            )
            seen["heads"] = heads
            seen["table"] = context.version_table
            seen["schema"] = context.version_table_schema
            return []

        with self.connect(connection) as conn:
            try:
                self.run_env(read, connection=conn, dont_mutate=True)
            except DbrError:
                raise
            except Exception as exc:  # env.py is the project's code: anything goes
                raise DbrError(
                    f"env.py of {self.target.name!r} failed",
                    cause=_first_line(exc),
                    hint="run `alembic current` in the project to see the whole error",
                ) from exc
        if "heads" not in seen:
            raise DbrError(
                f"env.py of {self.target.name!r} did not run migrations",
                cause=f"{self.script.env_py_location} never called "
                "context.run_migrations()",
                hint="check the project's env.py",
            )
        return VersionState(
            heads=tuple(seen["heads"]),
            table=seen["table"],
            schema=seen["schema"],
            exists=seen["exists"],
        )

    def check_database(self, context: MigrationContext) -> None:
        """Refuse when env.py connected somewhere else than the target.

        An env.py that reads its URL from, say, $DATABASE_URL would otherwise
        migrate another database than the one the plan was made for.
        """
        url = context.connection.engine.url
        mine = self.target.url
        if mine.get_backend_name() == "sqlite":
            same = (
                Path(url.database or "").resolve()
                == Path(mine.database or "").resolve()
            )
        else:
            same = (url.host or "localhost", url.port, url.database) == (
                mine.host or "localhost",
                url.port if mine.port is None else mine.port,
                mine.database,
            )
        if not same or url.get_backend_name() != mine.get_backend_name():
            raise DbrError(
                f"env.py of {self.target.name!r} connected to another database",
                cause=f"it opened {url.render_as_string(hide_password=True)}, the "
                f"target is {self.target.display_url}",
                hint="let env.py use config.attributes['connection'] or "
                "sqlalchemy.url (dbr sets both); nothing was run",
            )

    @contextmanager
    def connect(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A connection for env.py; SQLite gets real transactions around DDL."""
        if connection is not None:
            yield connection
            return
        engine = migration_engine(self.target)
        try:
            conn = engine.connect()
        except sa.exc.OperationalError as exc:
            if engine is not self.target.engine():
                engine.dispose()
            raise DbrError(
                f"cannot reach {self.target.name!r} ({self.target.display_url})",
                cause=_first_line(exc.orig or exc),
                hint="check that the database is up and the URL",
            ) from None
        try:
            with conn:
                yield conn
        finally:
            if engine is not self.target.engine():
                engine.dispose()


def load_project(target: Target) -> Project:
    """The target's Alembic project, from `alembic` in dbr.toml."""
    location = target.config.alembic
    if location is None:
        raise ConfigError(
            f"target {target.name!r} has no Alembic project",
            hint=f'set alembic = "path/to/alembic.ini" under '
            f"[targets.{target.name}] in dbr.toml",
        )
    if not location.exists():
        raise ConfigError(
            f"the Alembic project of {target.name!r} is missing",
            cause=f"{location} does not exist",
            hint="fix `alembic` in dbr.toml",
        )
    return Project(target, location)


def migration_engine(target: Target) -> Engine:
    """The engine migrations run on.

    Python's sqlite3 commits before DDL on its own, so a failed SQLite migration
    would stay half-applied; with BEGIN issued by SQLAlchemy, DDL joins the
    transaction and a trial can roll it back.
    """
    if target.dialect != "sqlite":
        return target.engine()
    engine = sa.create_engine(
        target.url, poolclass=NullPool, connect_args={"timeout": 10}
    )

    @sa.event.listens_for(engine, "connect")
    def _no_implicit(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def fresh_engine(target: Target) -> Engine:
    """A private engine (for reads beside a running migration)."""
    return make_engine(target.url, target.dialect)


def _config(location: Path, output: io.StringIO | None = None) -> Config:
    buffer = output if output is not None else io.StringIO()
    if location.is_dir():
        ini = location / "alembic.ini"
        if ini.is_file():
            location = ini
        else:
            config = Config(output_buffer=buffer, stdout=buffer)
            config.set_main_option("script_location", str(location))
            return config
    if location.suffix == ".toml":
        config = Config(toml_file=str(location), output_buffer=buffer, stdout=buffer)
    else:
        config = Config(str(location), output_buffer=buffer, stdout=buffer)
    folder = str(location.parent)
    # `prepend_sys_path = .` means the ini's folder when alembic runs from there.
    if folder not in sys.path:
        sys.path.append(folder)
    return config


@contextmanager
def _logging_kept() -> Iterator[None]:
    """dbr's logging stays dbr's while env.py runs.

    Most env.py files call fileConfig(alembic.ini), which would add handlers
    writing to stderr: noise for `dbr`, a corrupted screen for dbr-console. Only
    the alembic command line should get those, so the call is skipped (runs are
    serialised by _ENV_LOCK), and any other change is undone afterwards.
    """
    original = logging.config.fileConfig
    logging.config.fileConfig = _skip_file_config
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    manager = logging.Logger.manager
    saved = {
        name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        logging.config.fileConfig = original
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for name, logger in manager.loggerDict.items():
            if not isinstance(logger, logging.Logger):
                continue
            if name in saved:
                level, handlers, propagate, disabled = saved[name]
                logger.setLevel(level)
                logger.handlers[:] = handlers
                logger.propagate = propagate
                logger.disabled = disabled
            else:
                logger.handlers[:] = []
                logger.propagate = True


def _skip_file_config(fname: Any, *args: Any, **kwargs: Any) -> None:
    log.debug("env.py asked for the logging set-up of %s; dbr keeps its own", fname)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return redact(line)
