"""Which engines this build has; a pane whose engine is missing says so plainly."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

ENGINES = {
    "migrations": ("core.migrations", "the migration engine"),
    "backups": ("core.backups", "the backup engine"),
    "health": ("core.health", "the health engine"),
    "rollback": ("core.rollback", "the trigger and strategy engine"),
}


def engine(name: str) -> ModuleType | None:
    module, _ = ENGINES[name]
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


def missing(name: str) -> str:
    module, words = ENGINES[name]
    return f"not available: {words} ({module}) is not part of this build"
