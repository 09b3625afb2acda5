"""Which client tool to run: a pg_dump/pg_restore not older than the server, etc."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.errors import DbrError

PG_ROOTS = (
    Path("/usr/lib/postgresql"),
    Path("/usr/pgsql"),
    Path("/opt/homebrew/opt"),
    Path("/usr/local/opt"),
)
_VERSION_RE = re.compile(r"(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ClientTool:
    path: str
    version: str
    major: int


def tool_version(path: str) -> str:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def _major(text: str) -> int | None:
    match = _VERSION_RE.search(text)
    return int(match.group(1)) if match else None


def pg_candidates(
    name: str, roots: tuple[Path, ...] | None = None, *, on_path: bool = True
) -> list[ClientTool]:
    """Every installed copy of a PostgreSQL client tool with its major version."""
    found: dict[str, ClientTool] = {}
    for root in PG_ROOTS if roots is None else roots:
        if not root.is_dir():
            continue
        for binary in sorted(root.glob(f"*/bin/{name}")):
            major = _major(binary.parent.parent.name.replace("postgresql@", ""))
            if major is not None and binary.is_file():
                found[str(binary)] = ClientTool(str(binary), "", major)
    path = shutil.which(name) if on_path else None
    known = {str(Path(p).resolve()) for p in found}
    if path and str(Path(path).resolve()) not in known:
        version = tool_version(path)
        match = re.search(r"\)\s*(\d+)", version)
        major = int(match.group(1)) if match else None
        if major is not None:
            found[path] = ClientTool(path, version, major)
    return sorted(found.values(), key=lambda t: t.major)


def pick_pg_tool(
    name: str, server_major: int, roots: tuple[Path, ...] | None = None
) -> ClientTool:
    """The installed tool matching the server's major version, else the nearest newer.

    An older pg_dump refuses (or worse, misreads) a newer server, so none is picked.
    """
    # The versioned installs first: asking the one on PATH its version is slow
    # where it is a wrapper script (Debian's pg_wrapper).
    candidates = pg_candidates(name, roots, on_path=False)
    if not any(t.major >= server_major for t in candidates):
        candidates = pg_candidates(name, roots)
    usable = [t for t in candidates if t.major >= server_major]
    if not usable:
        have = ", ".join(f"{t.major} ({t.path})" for t in candidates) or "none"
        raise DbrError(
            f"no {name} for PostgreSQL {server_major}",
            cause=f"the server is version {server_major}; installed {name}: {have}",
            hint=f"install the PostgreSQL {server_major} client tools (e.g. "
            f"postgresql-client-{server_major}); nothing was written",
        )
    exact = [t for t in usable if t.major == server_major]
    chosen = (exact or usable)[0]
    version = chosen.version or tool_version(chosen.path)
    return ClientTool(chosen.path, version, chosen.major)


def mysql_tool(kind: str) -> ClientTool:
    """mariadb-dump/mysqldump (kind "dump") or the mariadb/mysql client ("client")."""
    names = ("mariadb-dump", "mysqldump") if kind == "dump" else ("mariadb", "mysql")
    for name in names:
        path = shutil.which(name)
        if path:
            version = tool_version(path)
            return ClientTool(path, version, _major(version) or 0)
    raise DbrError(
        f"neither {' nor '.join(names)} is installed",
        hint="install the MariaDB or MySQL client tools (e.g. mariadb-client)",
    )
