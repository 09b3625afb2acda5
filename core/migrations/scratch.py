"""Scratch databases for the round-trip test: made by dbr, always dropped by dbr.

A scratch database that already exists is refused, so dbr never drops a database
it did not create. Its schema can start as a copy of the target's (no rows).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from core.errors import ConfigError, DbrError, Refused
from core.secrets import redact
from core.targets import Target, make_engine

log = logging.getLogger(__name__)
TOOL_TIMEOUT = 600


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(
        f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    )


def scratch_target(target: Target, url: str) -> Target:
    scratch = Target.from_url(url, name=f"{target.name}-scratch")
    if scratch.dialect != target.dialect:
        raise ConfigError(
            f"the scratch database is {scratch.dialect}, the target {target.dialect}",
            hint="a round trip proves something only on the target's "
            "own kind of database",
        )
    same = (scratch.url.host, scratch.url.port, scratch.database) == (
        target.url.host,
        target.url.port,
        target.database,
    )
    if same or not scratch.database:
        raise Refused(
            "the scratch URL must name a new database, not the target's",
            cause=f"it names {scratch.display_url}",
            hint="give a database name dbr may create and drop",
        )
    config = replace(scratch.config, alembic=target.config.alembic)
    return Target(config)


@contextmanager
def scratch_database(scratch: Target) -> Iterator[list[bool]]:
    """Create the scratch database, refusing one that exists; always drop it."""
    dropped = [False]
    _create(scratch)
    try:
        yield dropped
    finally:
        scratch.dispose()
        try:
            _drop(scratch)
            dropped[0] = True
        except Exception as exc:  # reported in the result, never hides the cause
            log.error(
                "could not drop the scratch database %s: %s",
                scratch.display_url,
                _describe(exc),
            )


def _admin(scratch: Target) -> sa.Engine:
    url = scratch.url
    server = "postgres" if scratch.dialect == "postgresql" else None
    # URL.set() ignores None, so the server-level URL is built afresh.
    admin = sa.engine.URL.create(
        url.drivername,
        url.username,
        url.password,
        url.host,
        url.port,
        server,
        url.query,
    )
    engine = make_engine(admin, scratch.dialect)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _create(scratch: Target) -> None:
    name = scratch.database
    if scratch.dialect == "sqlite":
        path = Path(name)
        if path.exists():
            raise Refused(
                f"the scratch database {path} already exists",
                hint="dbr drops only databases it creates: give a new path",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        sa.create_engine(scratch.url).dispose()
        return
    engine = _admin(scratch)
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        with engine.connect() as conn:
            if scratch.dialect == "postgresql":
                exists = conn.execute(
                    sa.text("select 1 from pg_database where datname = :n"), {"n": name}
                )
            else:
                exists = conn.execute(
                    sa.text(
                        "select 1 from information_schema.schemata where schema_name = :n"
                    ),
                    {"n": name},
                )
            if exists.first() is not None:
                raise Refused(
                    f"the scratch database {name!r} already exists",
                    hint="dbr drops only databases it creates: give a new name",
                )
            conn.exec_driver_sql(f"create database {quoted}")
    except sa.exc.DBAPIError as exc:
        raise DbrError(
            f"cannot create the scratch database {name!r}",
            cause=_describe(exc.orig or exc),
            hint="the scratch URL's user needs the right to create databases",
        ) from None
    finally:
        engine.dispose()


def _drop(scratch: Target) -> None:
    if scratch.dialect == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(scratch.database + suffix).unlink(missing_ok=True)
        return
    engine = _admin(scratch)
    quoted = engine.dialect.identifier_preparer.quote(scratch.database)
    force = " with (force)" if scratch.dialect == "postgresql" else ""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"drop database if exists {quoted}{force}")
    finally:
        engine.dispose()


def copy_schema(
    source: Target, scratch: Target, version_table: str, heads: tuple[str, ...]
) -> None:
    """The source's tables, indexes, constraints and types, without rows, plus
    its version table's rows, so that the scratch stands where the source does."""
    if source.dialect == "sqlite":
        _copy_sqlite(source, scratch)
    elif source.dialect == "postgresql":
        _pipe(
            source,
            scratch,
            "pg_dump",
            ["--schema-only", "--no-owner", "--no-privileges"],
            "psql",
            ["-q", "-X", "-v", "ON_ERROR_STOP=1"],
        )
    else:
        _pipe(source, scratch, "dump", ["--no-data", "--skip-triggers"], "client", [])
    engine = make_engine(scratch.url, scratch.dialect)
    table = sa.table(version_table, sa.column("version_num"))
    try:
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table(version_table):
                conn.execute(
                    sa.text(
                        f"create table {version_table} "
                        "(version_num varchar(32) not null primary key)"
                    )
                )
            conn.execute(table.delete())
            for head in heads:
                conn.execute(table.insert().values(version_num=head))
    finally:
        engine.dispose()


def _copy_sqlite(source: Target, scratch: Target) -> None:
    order = {"table": 0, "index": 1, "view": 2, "trigger": 3}
    with source.engine().connect() as conn:
        rows = conn.execute(
            sa.text(
                "select type, sql from sqlite_master where sql is not null "
                "and name not like 'sqlite_%'"
            )
        ).all()
    engine = sa.create_engine(scratch.url)
    try:
        with engine.begin() as conn:
            for _kind, sql in sorted(rows, key=lambda r: order.get(r[0], 9)):
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _pipe(
    source: Target,
    scratch: Target,
    dump: str,
    dump_args: list[str],
    load: str,
    load_args: list[str],
) -> None:
    """dump the source's schema | load it into the scratch, passwords in env/files."""
    from core.backups.tools import mysql_tool, pick_pg_tool

    if source.dialect == "postgresql":
        major = int(source.server_version().split(".")[0].split()[0])
        dumper = pick_pg_tool(dump, major).path
        loader = pick_pg_tool(load, major).path
    else:
        dumper, loader = mysql_tool(dump).path, mysql_tool(load).path
    with source.client_call() as out, scratch.client_call() as into:
        dump_cmd = [dumper, *out.args, *dump_args]
        load_cmd = [loader, *into.args, *load_args]
        if source.dialect == "mysql":
            dump_cmd.append(source.database)
            load_cmd.append(scratch.database)
        try:
            produced = subprocess.run(
                dump_cmd,
                env=out.env,
                capture_output=True,
                timeout=TOOL_TIMEOUT,
                check=False,
            )
            if produced.returncode != 0:
                raise DbrError(
                    f"cannot copy the schema of {source.name!r}",
                    cause=redact(
                        produced.stderr.decode(errors="replace").strip()[-500:]
                    ),
                )
            loaded = subprocess.run(
                load_cmd,
                env=into.env,
                input=produced.stdout,
                capture_output=True,
                timeout=TOOL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DbrError(
                f"cannot copy the schema of {source.name!r}", cause=_describe(exc)
            ) from None
        if loaded.returncode != 0:
            raise DbrError(
                f"cannot load the schema of {source.name!r} into the scratch database",
                cause=redact(loaded.stderr.decode(errors="replace").strip()[-500:]),
            )
