"""Facts about a live database that a manifest records and a restore compares with.

Row counts per table, the Alembic heads, and what a restore will need from the
server it lands on (roles owning objects, extensions, DEFINER accounts).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.targets import Target

PG_SYSTEM = ("pg_catalog", "information_schema")
_PG_TABLES = """
select n.nspname, c.relname from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
  and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                  and d.objid = c.oid and d.deptype = 'e')
order by 1, 2
"""
_PG_OWNERS = """
select distinct pg_get_userbyid(owner) from (
  select c.relowner as owner from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname not in ('pg_catalog', 'information_schema')
      and n.nspname not like 'pg\\_toast%'
  union select p.proowner from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname not in ('pg_catalog', 'information_schema')
  union select t.typowner from pg_type t
    join pg_namespace n on n.oid = t.typnamespace
    where n.nspname not in ('pg_catalog', 'information_schema')
      and n.nspname not like 'pg\\_toast%'
  union select nspowner from pg_namespace
    where nspname not in ('pg_catalog', 'information_schema')
      and nspname not like 'pg\\_%'
) owners
"""
_MYSQL_DEFINERS = """
select definer from information_schema.views where table_schema = :db
union select definer from information_schema.routines where routine_schema = :db
union select definer from information_schema.triggers where trigger_schema = :db
union select definer from information_schema.events where event_schema = :db
"""


def quote(dialect: str, name: str) -> str:
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """text as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# MariaDB's system-versioned tables hold rows like any other (their history
# apart, which a dump leaves out).
_MYSQL_TABLES = "('BASE TABLE', 'SYSTEM VERSIONED')"


def table_names(conn: Connection, dialect: str) -> list[str]:
    """User tables, schema-qualified on PostgreSQL when not in public."""
    if dialect == "postgresql":
        return [
            name if schema == "public" else f"{schema}.{name}"
            for schema, name in conn.execute(sa.text(_PG_TABLES))
        ]
    if dialect == "mysql":
        return list(
            conn.execute(
                sa.text(
                    "select table_name from information_schema.tables where "
                    f"table_schema = database() and table_type in {_MYSQL_TABLES} "
                    "order by table_name"
                )
            ).scalars()
        )
    return list(
        conn.execute(
            sa.text(
                "select name from sqlite_master where type = 'table' and name not like "
                "'sqlite\\_%' escape '\\' order by name"
            )
        ).scalars()
    )


def qualified(dialect: str, table: str) -> str:
    if dialect == "postgresql" and "." in table:
        schema, name = table.split(".", 1)
        return f"{quote(dialect, schema)}.{quote(dialect, name)}"
    return quote(dialect, table)


def row_counts(
    conn: Connection,
    dialect: str,
    *,
    partitions: bool = False,
    known: dict[str, int] | None = None,
) -> dict[str, int]:
    """Exact row counts per table (count(*), not the planner's estimate).

    A partitioned table's count is the sum of its partitions', each counted
    once; the partitions themselves are listed too when partitions is true.
    known holds tables counted already (PostgreSQL), which are not counted again.
    """
    if dialect != "postgresql":
        return {
            table: count_rows(conn, dialect, table)
            for table in table_names(conn, dialect)
        }
    tree, inside = _pg_partitions(conn)
    counts: dict[str, int] = {}
    for table in table_names(conn, dialect):
        if table in tree:
            continue
        counts[table] = (known or {}).get(table)
        if counts[table] is None:
            counts[table] = count_rows(conn, dialect, table)
    for parent, leaves in tree.items():
        counts[parent] = sum(counts.get(leaf, 0) for leaf in leaves)
    if not partitions:
        counts = {table: rows for table, rows in counts.items() if table not in inside}
    return counts


def count_rows(conn: Connection, dialect: str, table: str) -> int:
    return conn.execute(
        sa.text(f"select count(*) from {qualified(dialect, table)}")
    ).scalar_one()


def _pg_partitions(conn: Connection) -> tuple[dict[str, list[str]], set[str]]:
    """Each partitioned table's leaf partitions, and every table that is a
    partition (sub-partitioned ones too), named as table_names() does."""
    rows = conn.execute(
        sa.text(
            "select pn.nspname, p.relname, ln.nspname, l.relname, p.relispartition "
            "from pg_class p join pg_namespace pn on pn.oid = p.relnamespace "
            "cross join lateral pg_partition_tree(p.oid) t "
            "join pg_class l on l.oid = t.relid "
            "join pg_namespace ln on ln.oid = l.relnamespace "
            "where p.relkind = 'p' and t.isleaf"
        )
    ).all()
    tree: dict[str, list[str]] = {}
    inside: set[str] = set()
    for parent_schema, parent, schema, leaf, nested in rows:
        key = parent if parent_schema == "public" else f"{parent_schema}.{parent}"
        name = leaf if schema == "public" else f"{schema}.{leaf}"
        tree.setdefault(key, []).append(name)
        inside.add(name)
        if nested:
            inside.add(key)
    return tree, inside


def pg_restore_hints(conn: Connection, counts: dict[str, int]) -> dict[str, list[int]]:
    """[heap bytes, rows] of every table by OID, as pg_restore -l names them:
    how a parallel restore shares out the work. counts must list partitions."""
    rows = conn.execute(
        sa.text(
            "select c.oid::text, n.nspname, c.relname, pg_relation_size(c.oid) "
            "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind = 'r' "
            "and n.nspname not in ('pg_catalog', 'information_schema') "
            "and n.nspname not like 'pg\\_toast%'"
        )
    ).all()
    return {
        oid: [
            int(size),
            counts.get(name if schema == "public" else f"{schema}.{name}", -1),
        ]
        for oid, schema, name, size in rows
    }


def pg_partition_names(conn: Connection) -> set[str]:
    """Every table that is a partition of another, named as table_names() does."""
    return _pg_partitions(conn)[1]


def alembic_heads(conn: Connection, dialect: str) -> list[str]:
    """The revisions in alembic_version, or [] when the table is not there."""
    if "alembic_version" not in table_names(conn, dialect):
        return []
    return sorted(
        conn.execute(sa.text("select version_num from alembic_version")).scalars()
    )


def requirements(conn: Connection, dialect: str) -> dict[str, list[str]]:
    """What the restore of this database needs from the server it lands on."""
    if dialect == "postgresql":
        return {
            "schemas": sorted(
                conn.execute(
                    sa.text(
                        "select nspname from pg_namespace where nspname not like 'pg\\_%' "
                        "and nspname <> 'information_schema'"
                    )
                ).scalars()
            ),
            "roles": sorted(conn.execute(sa.text(_PG_OWNERS)).scalars()),
            "extensions": sorted(
                conn.execute(
                    sa.text(
                        "select extname from pg_extension where extname <> 'plpgsql'"
                    )
                ).scalars()
            ),
        }
    if dialect == "mysql":
        definers = conn.execute(
            sa.text(_MYSQL_DEFINERS),
            {"db": conn.execute(sa.text("select database()")).scalar_one()},
        ).scalars()
        return {"definers": sorted({d for d in definers if d})}
    return {}


def non_transactional_tables(conn: Connection) -> dict[str, str]:
    """MySQL tables whose engine a --single-transaction dump cannot snapshot."""
    rows = conn.execute(
        sa.text(
            "select table_name, engine from information_schema.tables where "
            f"table_schema = database() and table_type in {_MYSQL_TABLES} and "
            "engine not in ('InnoDB')"
        )
    )
    return {name: engine for name, engine in rows}


def missing_requirements(target: Target, needs: dict[str, Any]) -> list[str]:
    """Problems a restore into target would hit; [] when everything is there."""
    problems: list[str] = []
    with target.engine().connect() as conn:
        if target.dialect == "postgresql":
            roles = set(conn.execute(sa.text("select rolname from pg_roles")).scalars())
            for role in needs.get("roles", []):
                if role not in roles:
                    problems.append(
                        f"role {role!r} (it owns objects in the backup) does not exist"
                    )
            available = (
                set(
                    conn.execute(
                        sa.text("select name from pg_available_extensions")
                    ).scalars()
                )
                if needs.get("extensions")  # it reads files: only when needed
                else set()
            )
            for extension in needs.get("extensions", []):
                if extension not in available:
                    problems.append(
                        f"extension {extension!r} is not installed on the server"
                    )
        elif target.dialect == "mysql":
            problems += _missing_definers(conn, needs.get("definers", []))
            problems += _packet_too_small(conn, needs.get("max_allowed_packet", 0))
    return problems


def _packet_too_small(conn: Connection, needed: int) -> list[str]:
    allowed = conn.execute(sa.text("select @@global.max_allowed_packet")).scalar_one()
    if needed <= allowed:
        return []
    return [
        f"the backup holds a statement of {needed:,} bytes, more than the server's "
        f"max_allowed_packet ({allowed:,}): raise it first, for example "
        f"SET GLOBAL max_allowed_packet = {_packet_size(needed)}, and in the "
        "server's configuration"
    ]


def _packet_size(needed: int) -> int:
    """needed, rounded up to a whole MiB (the server takes multiples of 1 KiB)."""
    return -(-needed // 2**20) * 2**20


def _missing_definers(conn: Connection, definers: list[str]) -> list[str]:
    if not definers:
        return []
    try:
        accounts = {
            f"{user}@{host}"
            for user, host in conn.execute(sa.text("select user, host from mysql.user"))
        }
    except sa.exc.DBAPIError:
        return []  # not allowed to read accounts: the restore itself will say so
    return [
        f"DEFINER {definer!r} (of views, routines, triggers or events in the "
        "backup) is not an account on this server"
        for definer in definers
        if definer not in accounts
    ]


def object_counts(conn: Connection, dialect: str) -> dict[str, int]:
    """How many views, triggers and routines there are, for the restore report."""
    if dialect == "postgresql":
        query = """
        select
          (select count(*) from pg_views
             where schemaname not in ('pg_catalog', 'information_schema')),
          (select count(*) from pg_trigger t join pg_class c on c.oid = t.tgrelid
             join pg_namespace n on n.oid = c.relnamespace
             where not t.tgisinternal
               and n.nspname not in ('pg_catalog', 'information_schema')),
          (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname not in ('pg_catalog', 'information_schema')
               and not exists (select 1 from pg_depend d
                               where d.objid = p.oid and d.deptype = 'e'))
        """
    elif dialect == "mysql":
        query = """
        select
          (select count(*) from information_schema.views
             where table_schema = database()),
          (select count(*) from information_schema.triggers
             where trigger_schema = database()),
          (select count(*) from information_schema.routines
             where routine_schema = database())
        """
    else:
        query = """
        select
          (select count(*) from sqlite_master where type = 'view'),
          (select count(*) from sqlite_master where type = 'trigger'),
          0
        """
    views, triggers, routines = conn.execute(sa.text(query)).one()
    return {"views": views, "triggers": triggers, "routines": routines}


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    """Differences between the manifest's row counts and a database's."""
    problems = []
    for table, rows in sorted(expected.items()):
        if table not in actual:
            problems.append(f"{table}: missing (manifest: {rows} rows)")
        elif actual[table] != rows:
            problems.append(f"{table}: {actual[table]} rows, manifest: {rows}")
    return problems
