"""Analyses of revision files kept on disk, so a history of thousands of revisions
is not re-parsed on every run. Entries are keyed by a hash of the file's content
(mtimes are too coarse to trust for files rewritten within milliseconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

from core.migrations.analysis import Downgrade, analyse_source

log = logging.getLogger(__name__)

FORMAT = 3  # bump when Downgrade or the analysis changes


def cache_dir() -> Path:
    return (
        Path(os.environ.get("DBR_CACHE_DIR") or platformdirs.user_cache_dir("dbr"))
        / "analyses"
    )


class AnalysisCache:
    """The analyses of one project's revision files."""

    def __init__(self, project_dir: str) -> None:
        digest = hashlib.sha256(project_dir.encode()).hexdigest()[:20]
        self.path = cache_dir() / f"{digest}.json"
        self.files: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        self.changed = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") == FORMAT:
                self.files = data["files"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no cache yet, or an unreadable one: start afresh

    def analysis(self, path: str | None, function: str = "downgrade") -> Downgrade:
        if not path:
            return Downgrade(found=False, problem="no source file")
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            return Downgrade(found=False, problem=f"cannot read {path}: {exc}")
        key = f"{function}:{hashlib.sha1(raw, usedforsecurity=False).hexdigest()}"
        self.used.add(key)
        entry = self.files.get(key)
        if entry is not None:
            try:
                return Downgrade.from_dict(entry)
            except (KeyError, TypeError):
                pass
        try:
            result = analyse_source(raw.decode("utf-8"), function)
        except UnicodeDecodeError as exc:
            return Downgrade(found=False, problem=f"cannot read {path}: {exc}")
        self.files[key] = result.to_dict()
        self.changed = True
        return result

    def save(self) -> None:
        """Write the cache if it changed; a cache that cannot be written is skipped."""
        if not self.changed and len(self.used) == len(self.files):
            return
        self.files = {k: v for k, v in self.files.items() if k in self.used}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"format": FORMAT, "files": self.files}, handle)
            os.replace(tmp, self.path)
            self.changed = False
        except OSError as exc:
            log.debug("analysis cache not written to %s: %s", self.path, exc)


def analyse_file(path: str, function: str = "downgrade") -> Downgrade:
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Downgrade(found=False, problem=f"cannot read {path}: {exc}")
    return analyse_source(source, function)
