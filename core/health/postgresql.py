"""PostgreSQL's own health checks: replication, transactions, locks, connections."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.health.checks import (
    BLOCKED_FOR,
    LONG_TRANSACTION_MAX,
    REPLICATION_LAG_MAX,
    CheckFailed,
    connection_share,
)

LAG = sa.text("""
select case when pg_is_in_recovery()
  then coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0)
  else (select coalesce(max(extract(epoch from replay_lag)), 0)
        from pg_stat_replication)
end
""")
LONGEST = sa.text("""
select coalesce(max(extract(epoch from now() - xact_start)), 0)
from pg_stat_activity
where datname = current_database() and xact_start is not null
  and pid <> pg_backend_pid() and backend_type = 'client backend'
""")
BLOCKED = sa.text("""
select count(*) from pg_stat_activity
where datname = current_database() and pid <> pg_backend_pid()
  and cardinality(pg_blocking_pids(pid)) > 0
  and now() - coalesce(query_start, state_change) > make_interval(secs => :seconds)
""")
SATURATION = sa.text("""
select count(*), current_setting('max_connections')::int
from pg_stat_activity where backend_type = 'client backend'
""")


def replication_lag(conn: Connection) -> tuple[Any, str]:
    lag = round(float(conn.execute(LAG).scalar() or 0), 2)
    if lag > REPLICATION_LAG_MAX:
        raise CheckFailed(f"{lag:g} s behind (limit {REPLICATION_LAG_MAX:g} s)", lag)
    return lag, f"{lag:g} s (limit {REPLICATION_LAG_MAX:g} s)"


def long_transactions(conn: Connection) -> tuple[Any, str]:
    longest = round(float(conn.execute(LONGEST).scalar() or 0), 1)
    if longest > LONG_TRANSACTION_MAX:
        raise CheckFailed(
            f"a transaction has been open for {longest:g} s "
            f"(limit {LONG_TRANSACTION_MAX:g} s)",
            longest,
        )
    return longest, f"longest open transaction {longest:g} s"


def blocked_sessions(conn: Connection) -> tuple[Any, str]:
    count = int(conn.execute(BLOCKED, {"seconds": BLOCKED_FOR}).scalar() or 0)
    if count:
        raise CheckFailed(
            f"{count} session(s) waiting on a lock for more than {BLOCKED_FOR:g} s",
            count,
        )
    return count, "no session waiting on a lock"


def connections(conn: Connection) -> tuple[Any, str]:
    used, limit = conn.execute(SATURATION).one()
    return connection_share(used, limit)


CHECKS = [
    ("replication lag", 1.0, replication_lag),
    ("long transactions", 1.0, long_transactions),
    ("blocked sessions", 1.0, blocked_sessions),
    ("connections", 1.0, connections),
]
