"""The backup catalog: files and JSON manifests in backup folders, indexed in the store.

The manifest beside each backup file is the record of truth; the `backups` table of
the state store is an index that `rescan` can always rebuild from the manifests.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.errors import DbrError
from core.state import Store, UTCDateTime, backups, pid_alive, utcnow

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
COMPLETE = "complete"
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_PREFIX = ".dbr-partial-"
EXTENSIONS = {"postgresql": ".pgdump.zst", "mysql": ".sql.zst", "sqlite": ".sqlite.zst"}
_PARTIAL_RE = re.compile(r"^\.dbr-partial-(\d+)-")


@dataclass
class Backup:
    """One backup as the catalog knows it: its file, manifest and verification."""

    id: str
    target: str
    dialect: str
    path: Path
    created_at: datetime
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    finished_at: datetime | None = None
    size: int | None = None
    raw_size: int | None = None
    sha256: str | None = None
    label: str | None = None
    pinned: bool = False
    pin_reason: str | None = None
    status: str = COMPLETE
    verified_at: datetime | None = None
    verify_ok: bool | None = None
    verify_detail: dict[str, Any] | None = None
    deep_verified_at: datetime | None = None
    deep_verify_ok: bool | None = None
    operation_id: str | None = None

    if not TYPE_CHECKING:  # hidden from type checkers, which would allow any name

        def __getattr__(self, name: str) -> Any:
            # Reached only for a field a listing left raw (see _DEFERRED).
            values = self.__dict__
            if name not in _DEFERRED or "_raw_" + name not in values:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}"
                )
            raw = values.pop("_raw_" + name)
            value = values[name] = Path(raw) if name == "path" else _parse_manifest(raw)
            return value

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def verified(self) -> bool:
        """Verified and sound at its last verification (plain or deep)."""
        return bool(self.verify_ok) and self.deep_verify_ok is not False

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)

    @property
    def tables(self) -> dict[str, int]:
        return dict(self.manifest.get("tables") or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "dialect": self.dialect,
            "path": str(self.path),
            "manifest_path": str(self.manifest_path),
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "duration": self.manifest.get("duration"),
            "size": self.size,
            "raw_size": self.raw_size,
            "sha256": self.sha256,
            "label": self.label,
            "pinned": self.pinned,
            "pin_reason": self.pin_reason,
            "status": self.status,
            "verified": self.verified,
            "verified_at": _iso(self.verified_at),
            "verify_ok": self.verify_ok,
            "verify_detail": self.verify_detail,
            "deep_verified_at": _iso(self.deep_verified_at),
            "deep_verify_ok": self.deep_verify_ok,
            "operation_id": self.operation_id,
            "alembic_heads": self.manifest.get("alembic_heads", []),
            "tables": self.tables,
            "server_version": self.manifest.get("server_version"),
            "client_version": self.manifest.get("client_version"),
            "notes": self.manifest.get("notes", []),
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], path: Path) -> Backup:
        """The record a manifest describes; path is the backup file beside it."""
        verification = manifest.get("verification") or {}
        deep = manifest.get("deep_verification") or {}
        return cls(
            id=manifest["id"],
            target=manifest["target"],
            dialect=manifest["dialect"],
            path=path,
            created_at=_time(manifest["created_at"]),
            finished_at=_time(manifest.get("finished_at")),
            manifest=manifest,
            size=manifest.get("size"),
            raw_size=manifest.get("raw_size"),
            sha256=manifest.get("sha256"),
            label=manifest.get("label"),
            pinned=bool(manifest.get("pinned")),
            pin_reason=manifest.get("pin_reason"),
            status=manifest.get("status", COMPLETE),
            verified_at=_time(verification.get("at")),
            verify_ok=verification.get("ok"),
            verify_detail=verification or None,
            deep_verified_at=_time(deep.get("at")),
            deep_verify_ok=deep.get("ok"),
            operation_id=manifest.get("operation_id"),
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def manifest_path(backup_file: Path) -> Path:
    name = backup_file.name
    for extension in EXTENSIONS.values():
        if name.endswith(extension):
            name = name[: -len(extension)]
            break
    return backup_file.with_name(name + MANIFEST_SUFFIX)


def file_name(target: str, dialect: str, backup_id: str, at: datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target)
    return f"{safe}-{at:%Y%m%dT%H%M%SZ}-{backup_id}{EXTENSIONS[dialect]}"


def ensure_folder(folder: Path) -> None:
    """Create a backup folder readable by its owner alone."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write a manifest atomically: a half-written manifest is never seen."""
    temporary = path.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{path.name}")
    data = json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_partials(folder: Path) -> list[Path]:
    """Remove partial files left by runs whose process is gone; return them."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _PARTIAL_RE.match(path.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        try:
            path.unlink()
            removed.append(path)
            log.info("removed %s, left by an interrupted backup", path)
        except FileNotFoundError:
            pass
    return removed


# -- the index ------------------------------------------------------------------


def _row(backup: Backup) -> dict[str, Any]:
    return {
        "id": backup.id,
        "target": backup.target,
        "dialect": backup.dialect,
        "path": str(backup.path),
        "created_at": backup.created_at,
        "finished_at": backup.finished_at,
        "size": backup.size,
        "raw_size": backup.raw_size,
        "sha256": backup.sha256,
        "label": backup.label,
        "pinned": backup.pinned,
        "pin_reason": backup.pin_reason,
        "status": backup.status,
        "verified_at": backup.verified_at,
        "verify_ok": backup.verify_ok,
        "verify_detail": backup.verify_detail,
        "deep_verified_at": backup.deep_verified_at,
        "deep_verify_ok": backup.deep_verify_ok,
        "operation_id": backup.operation_id,
        "manifest": backup.manifest,
    }


# Fields a row leaves raw until first used (Backup.__getattr__): a listing of
# thousands shows few manifests, and parsing each JSON manifest and building each
# Path were most of a listing's cost. JSON columns are selected as their text.
_DEFERRED = ("path", "manifest")
_AS_TEXT = ("manifest", "verify_detail")
# Times are read as the naive UTC they are stored as (see UTCDateTime) and made
# aware in _from_row: the type's per-value hook was a third of a listing's cost.
_TIMES = tuple(c.name for c in backups.columns if isinstance(c.type, UTCDateTime))
_ROW_SELECT = [
    sa.type_coerce(c, sa.Text).label(c.name)
    if c.name in _AS_TEXT
    else sa.type_coerce(c, sa.DateTime()).label(c.name)
    if c.name in _TIMES
    else c
    for c in backups.columns
]


def _from_row(row: Any, keys: list[str]) -> Backup:
    backup = Backup.__new__(Backup)
    values = backup.__dict__
    values.update(zip(keys, row, strict=True))
    for name in _DEFERRED:
        values["_raw_" + name] = values.pop(name)
    values["verify_detail"] = _json(values["verify_detail"])
    for name in _TIMES:
        if values[name] is not None:
            values[name] = values[name].replace(tzinfo=UTC)
    return backup


def _backups(conn: sa.Connection, query: sa.Select[Any]) -> list[Backup]:
    result = conn.execute(query)
    keys = list(result.keys())
    return [_from_row(row, keys) for row in result.all()]


def _json(raw: Any) -> Any:
    # A driver may hand JSON back already parsed (psycopg does); SQLite gives text,
    # "null" for a None the JSON type stored.
    if isinstance(raw, str | bytes):
        return None if raw == "null" else json.loads(raw)
    return raw


def _parse_manifest(raw: Any) -> dict[str, Any]:
    return _json(raw) or {}


def index(store: Store, backup: Backup) -> None:
    """Add or refresh one backup in the index."""
    with store.engine.begin() as conn:
        conn.execute(backups.delete().where(backups.c.id == backup.id))
        conn.execute(backups.insert().values(_row(backup)))


def unindex(store: Store, backup_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(backups.delete().where(backups.c.id == backup_id))


def listed(store: Store, target: str | None = None) -> list[Backup]:
    """Indexed backups, newest first."""
    query = sa.select(*_ROW_SELECT).order_by(backups.c.created_at.desc())
    if target:
        query = query.where(backups.c.target == target)
    with store.engine.connect() as conn:
        return _backups(conn, query)


def find(store: Store, id_prefix: str) -> Backup:
    """One indexed backup by its id or a unique prefix of it."""
    if not id_prefix or not re.fullmatch(r"[0-9a-f]+", id_prefix):
        raise DbrError(
            f"{id_prefix!r} is not a backup id",
            hint="see `dbr backups list` for the ids",
        )
    with store.engine.connect() as conn:
        rows = _backups(
            conn,
            sa.select(*_ROW_SELECT).where(backups.c.id.like(f"{id_prefix}%")).limit(2),
        )
    if len(rows) != 1:
        problem = "matches several backups" if rows else "is not in the catalog"
        raise DbrError(
            f"backup {id_prefix!r} {problem}",
            hint="see `dbr backups list` for the ids, or `dbr backups "
            "rescan` if the files were moved in",
        )
    return rows[0]


def save(store: Store, backup: Backup) -> None:
    """Write the backup's manifest from its record, then refresh the index."""
    manifest = dict(backup.manifest)
    manifest.update(
        pinned=backup.pinned,
        pin_reason=backup.pin_reason,
        label=backup.label,
        created_at=_iso(backup.created_at),
    )
    if backup.verified_at is not None:
        manifest["verification"] = {
            **(backup.verify_detail or {}),
            "at": _iso(backup.verified_at),
            "ok": backup.verify_ok,
        }
    if backup.deep_verified_at is not None:
        manifest["deep_verification"] = {
            **(manifest.get("deep_verification") or {}),
            "at": _iso(backup.deep_verified_at),
            "ok": backup.deep_verify_ok,
        }
    backup.manifest = manifest
    write_json(backup.manifest_path, manifest)
    index(store, backup)


def set_pin(
    store: Store, id_prefix: str, pinned: bool, reason: str | None = None
) -> Backup:
    backup = find(store, id_prefix)
    backup.pinned = pinned
    backup.pin_reason = (reason or "pinned by the operator") if pinned else None
    save(store, backup)
    return backup


def delete(store: Store, backup: Backup) -> None:
    """Remove a backup's file and manifest, then its index entry."""
    for path in (backup.path, backup.manifest_path):
        path.unlink(missing_ok=True)
    if backup.path.parent.is_dir():
        _sync_folder(backup.path.parent)
    unindex(store, backup.id)


@dataclass
class Rescan:
    """What a rescan found: the backups listed, and what could not be read."""

    backups: list[Backup]
    damaged: list[dict[str, str]]
    missing_files: list[dict[str, str]]
    removed_from_index: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "backups": [b.to_dict() for b in self.backups],
            "damaged": self.damaged,
            "missing_files": self.missing_files,
            "removed_from_index": self.removed_from_index,
        }


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest's content, or DbrError saying what is wrong with it."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DbrError(f"manifest {path} cannot be read", cause=str(exc)) from None
    required = ("id", "target", "dialect", "created_at", "file", "sha256", "size")
    if not isinstance(manifest, dict):
        raise DbrError(f"manifest {path} is damaged", cause="it is not a JSON object")
    absent = [k for k in required if k not in manifest]
    if absent:
        raise DbrError(
            f"manifest {path} is damaged", cause=f"it lacks {', '.join(absent)}"
        )
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise DbrError(
            f"manifest {path} is from a newer dbr",
            cause=f"format version {manifest['format_version']}",
            hint="upgrade dbr",
        )
    try:
        _time(manifest["created_at"])
    except (TypeError, ValueError):
        raise DbrError(
            f"manifest {path} is damaged", cause="created_at is not a time"
        ) from None
    return manifest


def rescan(store: Store, folders: Iterable[Path]) -> Rescan:
    """Rebuild the index from the manifests in folders; report what is damaged."""
    found: list[Backup] = []
    damaged: list[dict[str, str]] = []
    missing: list[dict[str, str]] = []
    seen_folders = set()
    for folder in folders:
        folder = folder.resolve()
        if folder in seen_folders or not folder.is_dir():
            continue
        seen_folders.add(folder)
        clean_partials(folder)
        found_here = _scan_folder(folder, damaged, missing)
        found.extend(found_here)
        named = {b.path.name for b in found_here} | {
            Path(m["path"]).name for m in missing
        }
        for path in sorted(folder.iterdir()):
            if (
                any(path.name.endswith(e) for e in EXTENSIONS.values())
                and path.name not in named
            ):
                damaged.append(
                    {"path": str(path), "problem": "backup file without a manifest"}
                )
    known = {b.id for b in found}
    removed = []
    with store.engine.begin() as conn:
        for row in conn.execute(sa.select(backups.c.id, backups.c.path)).all():
            if row.id not in known and Path(row.path).parent.resolve() in seen_folders:
                conn.execute(backups.delete().where(backups.c.id == row.id))
                removed.append(row.id)
    for backup in found:
        index(store, backup)
    found.sort(key=lambda b: b.created_at, reverse=True)
    return Rescan(found, damaged, missing, removed)


def _scan_folder(
    folder: Path, damaged: list[dict[str, str]], missing: list[dict[str, str]]
) -> list[Backup]:
    found = []
    for path in sorted(folder.glob("*" + MANIFEST_SUFFIX)):
        try:
            manifest = read_manifest(path)
        except DbrError as exc:
            damaged.append({"path": str(path), "problem": str(exc)})
            continue
        backup_file = folder / Path(manifest["file"]).name
        if not backup_file.is_file():
            missing.append(
                {
                    "path": str(backup_file),
                    "manifest": str(path),
                    "problem": "the manifest's backup file is missing",
                }
            )
            continue
        found.append(Backup.from_manifest(manifest, backup_file))
    return found


def touch_verification(
    backup: Backup, ok: bool, detail: dict[str, Any], *, deep: bool = False
) -> None:
    """Record a verification's outcome on the record (save() persists it)."""
    now = utcnow()
    if deep:
        backup.deep_verified_at, backup.deep_verify_ok = now, ok
        backup.manifest["deep_verification"] = {**detail, "at": _iso(now), "ok": ok}
    else:
        backup.verified_at, backup.verify_ok = now, ok
        backup.verify_detail = detail
