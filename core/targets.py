"""One database dbr manages: its dialect, engine, client-tool environment, redaction."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from core import secrets
from core.config import DIALECTS, TargetConfig
from core.errors import ConfigError, DbrError

CONNECT_TIMEOUT = 10


@dataclass
class ClientCall:
    """How to run a database's client tool: extra leading arguments and environment."""

    args: list[str]
    env: dict[str, str]


@dataclass
class Target:
    config: TargetConfig
    _engine: Engine | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_url(cls, url: str, name: str = "scratch") -> Target:
        """A target that is not in dbr.toml, such as a scratch or --into database."""
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in DIALECTS:
            raise ConfigError(
                f"unsupported database URL {secrets.display_url(url)}",
                hint="use postgresql+psycopg://, mysql+pymysql:// or sqlite:///",
            )
        return cls(TargetConfig(name=name, url=url))

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dialect(self) -> str:
        return self.config.dialect

    @cached_property
    def url(self) -> URL:
        """The SQLAlchemy URL with the password from password_env, if configured."""
        url = make_url(self.config.url)
        if self.dialect == "postgresql" and url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if self.dialect == "mysql" and url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername="mysql+pymysql")
        env_name = self.config.password_env
        if env_name:
            password = os.environ.get(env_name)
            if password is None:
                raise ConfigError(
                    f"target {self.name!r} needs a password",
                    cause=f"password_env names ${env_name}, which is not set",
                    hint=f"export {env_name}=... before running dbr",
                )
            url = url.set(password=password)
        if url.password:
            secrets.register(str(url.password))
        return url

    @property
    def display_url(self) -> str:
        return secrets.display_url(self.url)

    @property
    def database(self) -> str:
        return self.url.database or ""

    @property
    def host(self) -> str:
        """Where the database lives, as the console header shows it."""
        if self.dialect == "sqlite":
            return self.database
        port = f":{self.url.port}" if self.url.port else ""
        return f"{self.url.host or 'localhost'}{port}"

    @property
    def sqlite_path(self) -> Path:
        if self.dialect != "sqlite" or not self.database or self.database == ":memory:":
            raise DbrError(f"target {self.name!r} is not an SQLite file")
        return Path(self.database)

    def engine(self) -> Engine:
        """The target's engine, made on first use and kept."""
        if self._engine is None:
            self._engine = make_engine(self.url, self.dialect)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def server_version(self) -> str:
        with self.engine().connect() as conn:
            if self.dialect == "sqlite":
                return conn.execute(sa.text("select sqlite_version()")).scalar_one()
            if self.dialect == "postgresql":
                return conn.execute(sa.text("show server_version")).scalar_one()
            return conn.execute(sa.text("select version()")).scalar_one()

    @contextmanager
    def client_call(self) -> Iterator[ClientCall]:
        """Arguments and environment for pg_dump, mysqldump and friends.

        The password travels in the environment (libpq) or in a 0600 option file
        (MySQL clients), never in the arguments that `ps` shows.
        """
        url = self.url
        env = dict(os.environ)
        if self.dialect == "postgresql":
            for var, value in (
                ("PGHOST", url.host),
                ("PGPORT", url.port),
                ("PGUSER", url.username),
                ("PGDATABASE", url.database),
                ("PGPASSWORD", url.password),
            ):
                if value is not None:
                    env[var] = str(value)
            env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT))
            yield ClientCall(args=[], env=env)
            return
        if self.dialect != "mysql":
            raise DbrError(f"target {self.name!r} ({self.dialect}) has no client tool")
        lines = ["[client]"]
        for key, value in (
            ("host", url.host),
            ("port", url.port),
            ("user", url.username),
            ("password", url.password),
        ):
            if value is not None:
                lines.append(f"{key}={_option_value(str(value))}")
        fd, path = tempfile.mkstemp(prefix="dbr-", suffix=".cnf")
        try:
            with os.fdopen(fd, "w") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write("\n".join(lines) + "\n")
            yield ClientCall(args=[f"--defaults-extra-file={path}"], env=env)
        finally:
            os.unlink(path)


def make_engine(url: URL | str, dialect: str | None = None) -> Engine:
    """An engine with timeouts suited to a tool that must never hang."""
    url = make_url(url)
    dialect = dialect or DIALECTS[url.get_backend_name()]
    connect_args: dict = {}
    if dialect == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT, "application_name": "dbr"}
    elif dialect == "mysql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT, "charset": "utf8mb4"}
        my_cnf = Path.home() / ".my.cnf"
        if url.password is None and my_cnf.is_file():
            connect_args["read_default_file"] = str(my_cnf)
    elif dialect == "sqlite":
        connect_args = {"timeout": CONNECT_TIMEOUT}
    return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _option_value(value: str) -> str:
    """Quote a value for a MySQL option file so any character survives."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
