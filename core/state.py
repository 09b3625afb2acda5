"""The state store: one SQLAlchemy database for the journal, locks, backups and health.

SQLite by default, PostgreSQL when `[state] url` says so, so that a team's bastions
share one journal. Its schema is versioned with Alembic (core/state_migrations).
"""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.config import state_dir
from core.errors import ConfigError, DbrError
from core.secrets import display_url

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator):
    """Stores naive UTC on every backend; always hands back aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("dbr stores only timezone-aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> Any:
        return None if value is None else value.replace(tzinfo=UTC)


ID = sa.String(40)
JSON = sa.JSON().with_variant(sa.JSON(), "postgresql")

operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("target", sa.String(128), nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("plan", JSON),
    sa.Column("options", JSON),
    sa.Column("result", JSON),
    sa.Column("error", sa.Text),
    sa.Column("parent_id", ID),
    sa.Column("user", sa.String(128)),
    sa.Column("host", sa.String(255)),
    sa.Column("ssh_client", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("started_at", UTCDateTime, nullable=False, index=True),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("duration", sa.Float),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("operation_id", ID, nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", JSON),
    sa.Column("error", sa.Text),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("duration", sa.Float),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("target", sa.String(128), index=True),
    sa.Column("operation_id", ID, index=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", JSON),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("target", sa.String(128), primary_key=True),
    sa.Column("operation_id", ID, nullable=False),
    sa.Column("kind", sa.String(64)),
    sa.Column("user", sa.String(128)),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
)

backups = sa.Table(
    "backups",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("target", sa.String(128), nullable=False, index=True),
    sa.Column("dialect", sa.String(16), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("size", sa.BigInteger),
    sa.Column("raw_size", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("label", sa.String(255)),
    sa.Column("pinned", sa.Boolean, nullable=False, default=False),
    sa.Column("pin_reason", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("verified_at", UTCDateTime),
    sa.Column("verify_ok", sa.Boolean),
    sa.Column("verify_detail", JSON),
    sa.Column("deep_verified_at", UTCDateTime),
    sa.Column("deep_verify_ok", sa.Boolean),
    sa.Column("operation_id", ID),
    sa.Column("manifest", JSON),
)

health_samples = sa.Table(
    "health_samples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(128), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("healthy", sa.Boolean),
    sa.Column("conclusive", sa.Boolean, nullable=False),
    sa.Column("checks", JSON),
    sa.Index("ix_health_samples_target_at", "target", "at"),
)

schema_snapshots = sa.Table(
    "schema_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(128), nullable=False, index=True),
    sa.Column("operation_id", ID),
    sa.Column("label", sa.String(64)),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("revision", sa.String(255)),
    sa.Column("schema", JSON, nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def who() -> dict[str, Any]:
    """The OS user, host and SSH client address of this process, for the journal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION") or ""
    return {
        "user": user,
        "host": socket.gethostname(),
        "ssh_client": ssh.split()[0] if ssh else None,
        "pid": os.getpid(),
    }


def pid_alive(pid: int | None) -> bool:
    """Whether a process of this host with this id still runs."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


class Store:
    """An open state store; the journal, backup index and health samples use it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        try:
            upgrade(self.engine)
        except sa.exc.DBAPIError as exc:
            raise DbrError(
                f"cannot open the state store {display_url(url)}",
                cause=str(exc.orig).strip().splitlines()[0],
                hint="check [state] url in dbr.toml and that the folder is writable",
            ) from None

    def close(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:" and not path.parent.is_dir():
            if path.parent != state_dir():
                # A typo in [state] url must not start an empty journal elsewhere.
                raise ConfigError(
                    f"the state store's folder {path.parent} does not exist",
                    hint="fix [state] url in dbr.toml, or create the folder",
                )
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("pragma journal_mode=wal")
            cursor.execute("pragma synchronous=normal")
            cursor.execute("pragma busy_timeout=30000")
            cursor.close()

        return engine
    from core.targets import make_engine

    return make_engine(url)


UPGRADE_ATTEMPTS = 5
# The newest revision in core/state_migrations (a test keeps them equal): a store
# already there opens without loading Alembic, which every command would pay for.
STATE_HEAD = "0001"
VERSION_TABLE = "dbr_state_version"  # where Alembic keeps the store's revision


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the newest revision, if it is not there yet."""
    try:
        with engine.connect() as conn:
            found = set(
                conn.execute(
                    sa.text(f"select version_num from {VERSION_TABLE}")
                ).scalars()
            )
        if found == {STATE_HEAD}:
            return
    except sa.exc.DBAPIError:
        pass  # a new store: Alembic makes it below
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parent / "state_migrations")
    )
    script = ScriptDirectory.from_config(config)
    # Two processes opening a new store at once both find it empty; the one that
    # loses the race to create it sees the other's tables and looks again.
    for attempt in range(UPGRADE_ATTEMPTS):
        try:
            with engine.begin() as conn:
                current = set(MigrationContext.configure(conn).get_current_heads())
                if current == set(script.get_heads()):
                    return
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                return
        except sa.exc.DBAPIError:
            if attempt == UPGRADE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
