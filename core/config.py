"""dbr.toml: find it, parse it, validate every key, resolve relative paths."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError

APP = "dbr"
DIALECTS = {
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}
SEVERITIES = ("info", "warning", "critical")
TRIGGER_MODES = ("suggest", "auto", "shadow")
STRATEGY_RE = re.compile(
    r"^(notify|downgrade:[A-Za-z0-9_@\-+.]+|restore:(latest-verified|latest|[0-9a-z\-]+))$"
)
DURATION_RE = re.compile(r"^(\d+)\s*([smhdwy])$")
DURATION_UNITS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP))


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: float = 0.0  # seconds

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__)


@dataclass(frozen=True)
class CheckConfig:
    name: str
    sql: str
    min: float | None = None
    max: float | None = None
    weight: float = 1.0
    required: bool = False
    timeout: float = 5.0


@dataclass(frozen=True)
class HealthConfig:
    threshold: float = 80.0
    interval: float = 5.0
    timeout: float = 5.0
    latency_ms: float = 500.0
    recovery_samples: int = 3
    recovery_deadline: float = 300.0
    keep_samples: int = 10_000
    disable: tuple[str, ...] = ()
    checks: tuple[CheckConfig, ...] = ()


@dataclass(frozen=True)
class TriggerConfig:
    name: str
    strategy: str
    score_below: float | None = None
    checks_failing: tuple[str, ...] = ()
    consecutive: int = 1
    mode: str = "suggest"
    cooldown: float = 600.0


@dataclass(frozen=True)
class SinkConfig:
    type: str  # "jsonl" or "webhook"
    min_severity: str = "info"
    path: Path | None = None
    url: str | None = None
    url_env: str | None = None
    timeout: float = 5.0
    retries: int = 3


@dataclass(frozen=True)
class TargetConfig:
    name: str
    url: str
    password_env: str | None = None
    alembic: Path | None = None
    backup_dir: Path | None = None
    critical_tables: tuple[str, ...] = ()
    retention: RetentionPolicy | None = None
    health: HealthConfig = field(default_factory=HealthConfig)
    triggers: tuple[TriggerConfig, ...] = ()

    @property
    def dialect(self) -> str:
        return DIALECTS[self.url.split(":", 1)[0].split("+", 1)[0]]


@dataclass(frozen=True)
class Settings:
    path: Path | None
    state_url: str
    targets: dict[str, TargetConfig]
    sinks: tuple[SinkConfig, ...] = ()
    quiet_period: float = 300.0

    def target(self, name: str) -> TargetConfig:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.targets)) or "none"
            raise ConfigError(
                f"no target named {name!r}",
                cause=f"{self.where()} defines: {known}",
                hint="check the name, or add [targets.NAME] to dbr.toml",
            ) from None

    def where(self) -> str:
        return str(self.path) if self.path else "the built-in defaults"


def find_config(explicit: str | os.PathLike | None = None) -> Path | None:
    """--config, then $DBR_CONFIG, then ./dbr.toml, then the user's config folder."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} not found", hint="check the --config path"
            )
        return path
    env = os.environ.get("DBR_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} not found",
                cause="named by $DBR_CONFIG",
                hint="fix or unset DBR_CONFIG",
            )
        return path
    for candidate in (
        Path.cwd() / "dbr.toml",
        Path(platformdirs.user_config_dir(APP)) / "dbr.toml",
    ):
        if candidate.is_file():
            return candidate
    return None


def load(explicit: str | os.PathLike | None = None) -> Settings:
    path = find_config(explicit)
    if path is None:
        return Settings(path=None, state_url=default_state_url(), targets={})
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML", cause=str(exc)) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}", cause=exc.strerror or str(exc)
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text", cause=str(exc), hint="save it as UTF-8"
        ) from None
    return parse(raw, path)


def default_state_url() -> str:
    return f"sqlite:///{state_dir() / 'state.db'}"


class _Reader:
    """Reads one TOML table, naming the file and key in every complaint."""

    def __init__(self, table: Any, where: str, path: Path | None) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{where}] must be a table")
        self.table = dict(table)
        self.where = where
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where}.{key} {problem}")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
    ) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(key, "is required")
            return default
        value = self.table.pop(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(key, f"must be {_kind_name(kind)}, not a boolean")
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {_kind_name(kind)}, not {value!r}")
        return value

    def number(self, key: str, default: float | None, *, minimum: float = 0) -> Any:
        value = self.get(key, float, default)
        if value is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, not {value}")
        return value

    def count(self, key: str, default: int = 0, *, minimum: int = 0) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, not {value}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def path_value(self, key: str) -> Path | None:
        value = self.get(key, str)
        if value is None:
            return None
        resolved = Path(value).expanduser()
        if not resolved.is_absolute() and self.path is not None:
            resolved = self.path.parent / resolved
        return resolved

    def done(self) -> None:
        if self.table:
            key = sorted(self.table)[0]
            raise self.fail(key, "is not a known setting (check its spelling)")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def parse_duration(text: str | int | float, reader: _Reader, key: str) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = DURATION_RE.match(str(text).strip())
    if not match:
        raise reader.fail(
            key, f"must be a duration such as '2d' or '12h', not {text!r}"
        )
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def parse(raw: dict, path: Path | None) -> Settings:
    top = _Reader(raw, "dbr", path)
    state = _Reader(top.get("state", dict, {}), "state", path)
    state_url = state.get("url", str) or default_state_url()
    if state_url.startswith("sqlite:///") and not state_url.startswith("sqlite:////"):
        relative = state_url.removeprefix("sqlite:///")
        if relative and path is not None and not Path(relative).is_absolute():
            state_url = f"sqlite:///{path.parent / relative}"
    state.done()

    targets = {}
    for name, table in top.get("targets", dict, {}).items():
        targets[name] = _parse_target(name, table, path)

    alerts = _Reader(top.get("alerts", dict, {}), "alerts", path)
    quiet = alerts.number("quiet_period", 300.0)
    sinks = tuple(
        _parse_sink(i, table, path)
        for i, table in enumerate(alerts.get("sinks", list, []))
    )
    alerts.done()
    top.done()
    return Settings(
        path=path, state_url=state_url, targets=targets, sinks=sinks, quiet_period=quiet
    )


def _parse_target(name: str, table: Any, path: Path | None) -> TargetConfig:
    r = _Reader(table, f"targets.{name}", path)
    url = r.get("url", str, required=True)
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in DIALECTS:
        raise r.fail(
            "url",
            f"has an unsupported database {scheme!r}; use "
            "postgresql+psycopg://, mysql+pymysql:// or sqlite:///",
        )
    try:
        make_url(url)
    except (ValueError, ArgumentError) as exc:
        raise r.fail(
            "url",
            f"is not a database URL ({exc}); write it as "
            "dialect+driver://user@host:port/database",
        ) from None
    if scheme == "sqlite":
        url = _absolute_sqlite(url, path)
    retention = None
    if "retention" in r.table:
        retention = _parse_retention(
            r.get("retention", dict), f"{r.where}.retention", path
        )
    health = _parse_health(r.get("health", dict, {}), f"{r.where}.health", path)
    triggers = tuple(
        _parse_trigger(table, f"{r.where}.triggers[{i}]", path)
        for i, table in enumerate(r.get("triggers", list, []))
    )
    target = TargetConfig(
        name=name,
        url=url,
        password_env=r.get("password_env", str),
        alembic=r.path_value("alembic"),
        backup_dir=r.path_value("backup_dir") or data_dir() / "backups" / name,
        critical_tables=r.strings("critical_tables"),
        retention=retention,
        health=health,
        triggers=triggers,
    )
    r.done()
    return target


def _absolute_sqlite(url: str, path: Path | None) -> str:
    prefix, _, rest = url.partition(":///")
    if not rest or rest.startswith("/") or rest == ":memory:" or path is None:
        return url
    return f"{prefix}:///{path.parent / rest}"


def _parse_retention(table: Any, where: str, path: Path | None) -> RetentionPolicy:
    r = _Reader(table, where, path)
    within = r.get("keep_within", (str, int, float))
    policy = RetentionPolicy(
        keep_last=r.count("keep_last"),
        keep_hourly=r.count("keep_hourly"),
        keep_daily=r.count("keep_daily"),
        keep_weekly=r.count("keep_weekly"),
        keep_monthly=r.count("keep_monthly"),
        keep_yearly=r.count("keep_yearly"),
        keep_within=parse_duration(within, r, "keep_within") if within else 0.0,
    )
    r.done()
    return policy


def _parse_health(table: Any, where: str, path: Path | None) -> HealthConfig:
    r = _Reader(table, where, path)
    threshold = r.number("threshold", 80.0)
    if threshold > 100:
        raise r.fail("threshold", f"is a percentage, at most 100, not {threshold}")
    checks = []
    for i, raw in enumerate(r.get("checks", list, [])):
        c = _Reader(raw, f"{where}.checks[{i}]", path)
        check = CheckConfig(
            name=c.get("name", str, required=True),
            sql=c.get("sql", str, required=True),
            min=c.number("min", None, minimum=float("-inf")),
            max=c.number("max", None, minimum=float("-inf")),
            weight=c.number("weight", 1.0),
            required=c.get("required", bool, False),
            timeout=c.number("timeout", 5.0, minimum=0.1),
        )
        c.done()
        checks.append(check)
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise r.fail("checks", "has two checks with the same name")
    health = HealthConfig(
        threshold=threshold,
        interval=r.number("interval", 5.0, minimum=0.1),
        timeout=r.number("timeout", 5.0, minimum=0.1),
        latency_ms=r.number("latency_ms", 500.0),
        recovery_samples=r.count("recovery_samples", 3, minimum=1),
        recovery_deadline=r.number("recovery_deadline", 300.0),
        keep_samples=r.count("keep_samples", 10_000, minimum=10),
        disable=r.strings("disable"),
        checks=tuple(checks),
    )
    r.done()
    return health


def _parse_trigger(table: Any, where: str, path: Path | None) -> TriggerConfig:
    r = _Reader(table, where, path)
    strategy = r.get("strategy", str, required=True)
    if not STRATEGY_RE.match(strategy):
        raise r.fail(
            "strategy",
            f"must be 'downgrade:N', 'downgrade:REV', "
            f"'restore:latest-verified' or 'notify', not {strategy!r}",
        )
    mode = r.get("mode", str, "suggest")
    if mode not in TRIGGER_MODES:
        raise r.fail("mode", f"must be one of {', '.join(TRIGGER_MODES)}, not {mode!r}")
    trigger = TriggerConfig(
        name=r.get("name", str, required=True),
        strategy=strategy,
        score_below=r.number("score_below", None),
        checks_failing=r.strings("checks_failing"),
        consecutive=r.count("consecutive", 1, minimum=1),
        mode=mode,
        cooldown=r.number("cooldown", 600.0),
    )
    if trigger.score_below is None and not trigger.checks_failing:
        raise r.fail("score_below", "or checks_failing is needed to say when it fires")
    r.done()
    return trigger


def _parse_sink(index: int, table: Any, path: Path | None) -> SinkConfig:
    r = _Reader(table, f"alerts.sinks[{index}]", path)
    kind = r.get("type", str, required=True)
    if kind not in ("jsonl", "webhook"):
        raise r.fail("type", f"must be 'jsonl' or 'webhook', not {kind!r}")
    severity = r.get("min_severity", str, "info")
    if severity not in SEVERITIES:
        raise r.fail("min_severity", f"must be one of {', '.join(SEVERITIES)}")
    sink = SinkConfig(
        type=kind,
        min_severity=severity,
        path=r.path_value("path"),
        url=r.get("url", str),
        url_env=r.get("url_env", str),
        timeout=r.number("timeout", 5.0, minimum=0.1),
        retries=r.count("retries", 3),
    )
    if kind == "jsonl" and sink.path is None:
        raise r.fail("path", "is required for a jsonl sink")
    if kind == "webhook" and not (sink.url or sink.url_env):
        raise r.fail("url", "or url_env is required for a webhook sink")
    r.done()
    return sink
