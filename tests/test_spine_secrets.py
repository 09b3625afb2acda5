"""A password never shows: not in output, logs, the journal, errors or `ps`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import state
from core.config import TargetConfig
from core.plans import Plan, Step
from core.targets import Target, make_engine
from core.workspace import Workspace
from tests.conftest import MYSQL_ADMIN, PG_ADMIN, need_server, unique_name

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Pw%41d @:/#?&!x9"  # survives %, spaces and URL punctuation


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBR_TEST_SECRET", PASSWORD)


@pytest.fixture
def pg_role(pg_url: str) -> tuple[str, str]:
    """A PostgreSQL role with PASSWORD and a database it owns; dropped afterwards."""
    role = unique_name("dbr_role")
    admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                f"create role {role} login password :p".replace(
                    ":p", "'" + PASSWORD.replace("'", "''") + "'"
                )
            )
        )
        database = sa.engine.make_url(pg_url).database
        conn.execute(sa.text(f'alter database "{database}" owner to {role}'))
    yield role, database
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{database}" with (force)'))
        conn.execute(sa.text(f"drop role if exists {role}"))
    admin.dispose()


def pg_target(role: str, database: str) -> Target:
    return Target(
        TargetConfig(
            name="shop",
            url=f"postgresql+psycopg://{role}@127.0.0.1:5432/{database}",
            password_env="DBR_TEST_SECRET",
        )
    )


def test_password_from_env_connects_and_never_appears_in_the_display_url(
    pg_role: tuple[str, str],
) -> None:
    target = pg_target(*pg_role)
    with target.engine().connect() as conn:
        assert conn.execute(sa.text("select current_user")).scalar() == pg_role[0]
    assert PASSWORD not in target.display_url and "***" in target.display_url
    assert PASSWORD not in repr(target) and PASSWORD not in str(target.config)


def test_client_tools_get_the_password_outside_their_arguments(
    pg_role: tuple[str, str],
) -> None:
    target = pg_target(*pg_role)
    with target.client_call() as call:
        process = subprocess.Popen(
            [
                "psql",
                "-X",
                "-At",
                "-c",
                "select current_user, pg_sleep(0.5)",
                *call.args,
            ],
            env=call.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and output.startswith(pg_role[0])
    assert PASSWORD not in cmdline
    assert "PGPASSWORD" in call.env and PASSWORD not in " ".join(call.args)


def test_mysql_clients_get_a_0600_option_file_that_is_removed_afterwards() -> None:
    need_server(MYSQL_ADMIN, "MariaDB")
    user = unique_name("dbr_user")
    admin = make_engine(MYSQL_ADMIN)
    with admin.begin() as conn:
        conn.execute(
            sa.text(f"create user '{user}'@'%' identified by :p"), {"p": PASSWORD}
        )
    try:
        target = Target(
            TargetConfig(
                name="billing",
                url=f"mysql+pymysql://{user}@127.0.0.1:3306/",
                password_env="DBR_TEST_SECRET",
            )
        )
        with target.client_call() as call:
            option_file = Path(call.args[0].split("=", 1)[1])
            mode = stat.S_IMODE(option_file.stat().st_mode)
            result = subprocess.run(
                ["mariadb", *call.args, "-N", "-e", "select current_user()"],
                env=call.env,
                capture_output=True,
                text=True,
                timeout=30,
            )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(user)
        assert mode == 0o600 and not option_file.exists()
        assert PASSWORD not in " ".join(call.args)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop user if exists '{user}'@'%'"))
        admin.dispose()


def test_no_password_in_cli_output_logs_or_any_journal_row(tmp_path: Path) -> None:
    need_server(PG_ADMIN, "PostgreSQL")
    url_password = "Url-S3cret-zz"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    config = tmp_path / "dbr.toml"
    config.write_text(
        f'[state]\nurl = "{state_url}"\n\n'
        f'[targets.shop]\nurl = "postgresql+psycopg://app:{url_password}'
        '@127.0.0.1:1/shop"\n\n'
        '[targets.env]\nurl = "postgresql+psycopg://app@127.0.0.1:1/shop"\n'
        'password_env = "DBR_TEST_SECRET"\n\n'
        f'[[alerts.sinks]]\ntype = "jsonl"\npath = "{tmp_path / "alerts.jsonl"}"\n'
    )
    env = {**os.environ, "DBR_TEST_SECRET": PASSWORD}

    # An operation whose plan, steps, events and error all mention the URL.

    ws = Workspace.open(config)
    for name in ("shop", "env"):
        target = ws.target(name)
        raw_url = target.url.render_as_string(hide_password=False)

        def leak(ctx, raw_url=raw_url):
            ctx.log(f"connecting to {raw_url}")
            raise RuntimeError(f"could not reach {raw_url}")

        plan = Plan(
            "test.leak",
            name,
            f"touch {raw_url}",
            steps=[Step("leak", f"uses {raw_url}", run=leak, sql=f"-- {raw_url}")],
            summary={"url": raw_url},
        )
        outcome = ws.executor.run(plan, target, confirmed=True)
        assert outcome.status == "failed"
    ws.close()

    outputs = []
    for args in (
        ["targets"],
        ["targets", "--json"],
        ["config", "check"],
        ["log"],
        ["log", "--json"],
        ["metrics", "--json"],
        ["-vv", "log", "show", outcome.operation_id],
        ["log", "show", outcome.operation_id, "--json"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "console.cli", "--config", str(config), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, (args, result.stderr)
        outputs.append(result.stdout + result.stderr)
    shown = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "console.cli",
                "--config",
                str(config),
                "log",
                "show",
                outcome.operation_id,
                "--json",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert "could not reach" in shown["error"] and "***" in shown["error"]

    engine = sa.create_engine(state_url)
    with engine.connect() as conn:
        for table in state.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                outputs.append(json.dumps(list(row), default=str))
    engine.dispose()
    outputs.append((tmp_path / "alerts.jsonl").read_text())
    everything = "\n".join(outputs)
    assert "touch" in everything and "could not reach" in everything
    for secret in (url_password, PASSWORD):
        assert secret not in everything
