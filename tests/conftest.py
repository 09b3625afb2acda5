"""Fixtures: a fresh database per test on the real servers and in SQLite.

PostgreSQL and MariaDB are found at DBR_TEST_PG_URL / DBR_TEST_MYSQL_URL (defaults:
127.0.0.1:5432 as postgres, 127.0.0.1:3306 as root). When a server is unreachable its
tests skip with a loud reason, except when CI is set: then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.config import TargetConfig
from core.targets import Target, make_engine

PG_ADMIN = os.environ.get(
    "DBR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN = os.environ.get(
    "DBR_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"
)


def _find_sample_data() -> Path:
    """Sample databases: $DBR_SAMPLE_DATA, else ../shared/data beside the repo."""
    candidates = (
        [Path(os.environ["DBR_SAMPLE_DATA"])]
        if os.environ.get("DBR_SAMPLE_DATA")
        else []
    )
    candidates += [
        Path(__file__).resolve().parents[2] / "shared" / "data",
        Path("/work/shared/data"),
    ]
    for candidate in candidates:
        if (candidate / "pagila").is_dir():
            return candidate
    return candidates[0]


SHARED_DATA = _find_sample_data()


def sample(relative: str) -> Path:
    """A sample-data file; its tests skip, loudly, on a machine without it."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(
            f"SKIPPING: sample data {relative} is not under {SHARED_DATA}; "
            "set DBR_SAMPLE_DATA to the folder holding pagila/, chinook/ "
            "and sakila-mysql/"
        )
    return path


_reachable: dict[str, str | None] = {}


def _unreachable(url: str) -> str | None:
    """Why the server at url cannot be used, or None when it can."""
    if url not in _reachable:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            _reachable[url] = None
        except Exception as exc:  # any failure to connect means: no server here
            _reachable[url] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            engine.dispose()
    return _reachable[url]


def need_server(url: str, name: str) -> None:
    problem = _unreachable(url)
    if problem is None:
        return
    message = f"{name} server at {sa.engine.make_url(url).host} unreachable: {problem}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so server tests must run)")
    pytest.skip(f"SKIPPING {name} TESTS: {message}")


def unique_name(prefix: str = "dbr_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    need_server(PG_ADMIN, "PostgreSQL")
    name = unique_name()
    admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(PG_ADMIN).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB/MySQL database for this test, dropped afterwards."""
    need_server(MYSQL_ADMIN, "MariaDB")
    name = unique_name()
    admin = make_engine(MYSQL_ADMIN)
    with admin.begin() as conn:
        conn.execute(
            sa.text(
                f"create database `{name}` character set utf8mb4 collate utf8mb4_unicode_ci"
            )
        )
    url = sa.engine.make_url(MYSQL_ADMIN).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(sa.text(f"drop database if exists `{name}`"))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'target.db'}"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def any_url(request: pytest.FixtureRequest) -> str:
    """The same test on each dialect."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}
    return request.getfixturevalue(fixture[request.param])


def make_target(url: str, name: str = "t", **config: object) -> Target:
    return Target(TargetConfig(name=name, url=url, **config))


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    (tmp_path / "state").mkdir()
    return f"sqlite:///{tmp_path / 'state' / 'state.db'}"


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbr's caches (revision analyses) go to a test folder, not the user's."""
    monkeypatch.setenv("DBR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
