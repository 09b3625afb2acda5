"""Shared by the backup tests: a workspace on a real database, loaders for samples."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import sqlalchemy as sa

from core.backups import inspect
from core.targets import Target
from core.workspace import Workspace
from tests.conftest import sample


def workspace(
    tmp_path: Path,
    url: str,
    name: str = "db",
    retention: str = "",
    backup_dir: Path | None = None,
    **extra: str,
) -> Workspace:
    """A dbr.toml with one target whose backups go under tmp_path."""
    lines = [
        "[state]",
        f'url = "sqlite:///{tmp_path / "state.db"}"',
        f"[targets.{name}]",
        f'url = "{url}"',
        f'backup_dir = "{backup_dir or tmp_path / "backups" / name}"',
    ]
    lines += [f'{key} = "{value}"' for key, value in extra.items()]
    if retention:
        lines += [f"[targets.{name}.retention]", retention]
    config = tmp_path / "dbr.toml"
    config.write_text("\n".join(lines) + "\n")
    return Workspace.open(config)


def load_pagila(pg_url: str) -> None:
    """Pagila's schema and data into the fresh database, as its README says."""
    url = sa.engine.make_url(pg_url)
    for part in ("pagila-schema.sql", "pagila-data.sql"):
        subprocess.run(
            [
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                url.host or "",
                "-p",
                str(url.port or 5432),
                "-U",
                url.username or "postgres",
                "-d",
                url.database or "",
                "-f",
                str(sample(f"pagila/{part}")),
            ],
            check=True,
            capture_output=True,
        )


def load_sakila(mysql_url: str) -> None:
    """Sakila into the fresh database (its script names `sakila`: renamed here)."""
    url = sa.engine.make_url(mysql_url)
    text = sample("sakila-mysql/sakila-mysql-dump.sql").read_text(
        encoding="utf-8", errors="strict"
    )
    text = text.replace("create schema sakila;", "", 1).replace(
        "use sakila;", f"use `{url.database}`;", 1
    )
    assert f"use `{url.database}`;" in text, "the Sakila script changed shape"
    subprocess.run(
        [
            "mariadb",
            "-h",
            url.host or "",
            "-P",
            str(url.port or 3306),
            "-u",
            url.username or "root",
            url.database or "",
        ],
        input=text.encode(),
        check=True,
        capture_output=True,
    )


def load_chinook_sqlite(sqlite_url: str) -> Path:
    path = Path(sa.engine.make_url(sqlite_url).database or "")
    shutil.copyfile(sample("chinook/Chinook_Sqlite.sqlite"), path)
    with sqlite3.connect(path) as db:  # a trigger and a view for the round trip
        db.executescript("""
            create view big_invoices as select * from Invoice where Total > 10;
            create trigger track_touch after update on Track
            begin select 1; end;
        """)
    return path


def state_of(target: Target) -> dict:
    """Row counts and object counts, as an operator would compare them."""
    target.dispose()
    with target.engine().connect() as conn:
        state = {
            "tables": inspect.row_counts(conn, target.dialect),
            "objects": inspect.object_counts(conn, target.dialect),
        }
    target.dispose()
    return state
