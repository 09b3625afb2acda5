"""The demo workspace: a record shop in SQLite, its Alembic project and a dbr.toml."""

from __future__ import annotations

import gzip
import json
import logging
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.pool import NullPool

from core.errors import ConfigError, DbrError

log = logging.getLogger(__name__)

DATABASE = "shop.db"
CONFIG = "dbr.toml"
# What init_demo copies from core/demo_data into the workspace, as it is.
SHIPPED = ("dbr.toml", "alembic.ini", "CHINOOK-LICENSE.txt", "migrations")
ROWS = "shop.json.gz"
STAMP = "%Y-%m-%d %H:%M:%S"  # the form SQLite's datetime('now') compares with


def init_demo(directory: Path, *, force: bool = False) -> Path:
    """Write a ready demo workspace into directory; return the path of its dbr.toml.

    The workspace holds shop.db (at the head of its Alembic history, with a few
    thousand rows whose newest orders are minutes old), the Alembic project, and
    a commented dbr.toml with one target, `shop`. A folder that is not empty is
    refused unless force is true; then the demo's own files are written over and
    anything else in the folder is left alone.
    """
    directory = Path(directory).expanduser().absolute()
    _check_destination(directory, force)
    source = files("core.demo_data")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED:
            _copy(source / name, directory / name)
        (directory / "backups" / "shop").mkdir(parents=True, exist_ok=True)
        _build_database(directory, source / ROWS)
        # A few real backups of different ages, so the catalog has a history.
        from core.backups.demo import seed_demo_backups

        seed_demo_backups(directory / CONFIG)
    except (OSError, sqlite3.Error, sa.exc.SQLAlchemyError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) else None
        raise DbrError(
            f"cannot write the demo workspace into {directory}",
            cause=cause or str(exc),
            hint="choose a folder you can write to",
        ) from exc
    log.info("demo workspace written to %s", directory)
    return directory / CONFIG


def _check_destination(directory: Path, force: bool) -> None:
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ConfigError(
            f"cannot write the demo workspace into {directory}",
            cause="it is a file, not a folder",
            hint="choose a new or empty folder",
        )
    entries = sorted(p.name for p in directory.iterdir())
    if entries and not force:
        raise ConfigError(
            f"{directory} is not empty",
            cause=f"it holds {len(entries)} entries, such as {entries[0]!r}",
            hint="choose a new or empty folder, or use --force to write the demo "
            "over it",
        )
    strangers = _foreign_revisions(directory / "migrations" / "versions")
    if strangers:
        # They would join the demo's history and break its single head.
        raise ConfigError(
            f"{directory} already holds other Alembic revisions",
            cause=f"{len(strangers)} unknown files in migrations/versions, such as "
            f"{strangers[0]!r}",
            hint="choose a new or empty folder",
        )


def _foreign_revisions(versions: Path) -> list[str]:
    """Revision files in versions that the demo did not write."""
    if not versions.is_dir():
        return []
    ours = {
        p.name for p in (files("core.demo_data") / "migrations" / "versions").iterdir()
    }
    return sorted(p.name for p in versions.glob("*.py") if p.name not in ours)


def _copy(source: Traversable, destination: Path) -> None:
    """Copy a file or folder out of the package, leaving bytecode behind."""
    if source.name == "__pycache__" or source.name.endswith(".pyc"):
        return
    if source.is_dir():
        destination.mkdir(exist_ok=True)
        for child in source.iterdir():
            _copy(child, destination / child.name)
        return
    destination.write_bytes(source.read_bytes())


def _build_database(directory: Path, rows: Traversable) -> None:
    """Upgrade a new database to head, fill it, then move it into place."""
    database = directory / DATABASE
    scratch = directory / f".{DATABASE}.new"
    scratch.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{scratch}", poolclass=NullPool)
    try:
        with engine.begin() as connection:
            config = Config(str(directory / "alembic.ini"))
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")
        _load_rows(scratch, json.loads(gzip.decompress(rows.read_bytes())))
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    # A journal or WAL left by an older shop.db would be replayed into the new one.
    for suffix in ("-journal", "-wal", "-shm"):
        directory.joinpath(DATABASE + suffix).unlink(missing_ok=True)
    os.replace(scratch, database)


def _load_rows(database: Path, data: dict[str, Any]) -> None:
    """Insert the shipped rows, turning each stored age into a recent timestamp."""
    now = datetime.now(UTC)
    ages: dict[str, list[str]] = data["age_columns"]
    db = sqlite3.connect(database)
    try:
        with db:
            for table, content in data["tables"].items():
                columns: list[str] = content["columns"]
                stamped = [columns.index(c) for c in ages.get(table, ())]
                rows = content["rows"]
                for row in rows:
                    for i in stamped:
                        row[i] = (now - timedelta(seconds=row[i])).strftime(STAMP)
                names = ", ".join(_quote(c) for c in columns)
                marks = ", ".join("?" for _ in columns)
                db.executemany(
                    f"INSERT INTO {_quote(table)} ({names}) VALUES ({marks})", rows
                )
    finally:
        db.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
