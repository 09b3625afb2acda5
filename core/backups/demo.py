"""Backups for the demo workspace: real dumps of the shop, dated back in time.

So that the catalog, retention and restore have something to show from the first
minute: backups 2 hours to 40 days old, one verified, one pinned.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from core.backups import catalog, verify
from core.backups.catalog import Backup
from core.backups.create import create
from core.config import load
from core.state import Store
from core.targets import Target

# (age, label, pinned, verified)
DEMO_BACKUPS = (
    (timedelta(days=40), "before the catalogue migration", True, False),
    (timedelta(days=9), "weekly", False, False),
    (timedelta(days=3), "nightly", False, False),
    (timedelta(days=1), "nightly", False, True),
    (timedelta(hours=2), "before the loyalty release", False, False),
)


def seed_demo_backups(config: Path, target_name: str = "shop") -> list[Backup]:
    """Take the demo's backups of target_name and date each back by its age."""
    settings = load(config)
    store = Store(settings.state_url)
    target = Target(settings.target(target_name))
    made = []
    try:
        for age, label, pinned, verified in DEMO_BACKUPS:
            backup = create(
                store,
                target,
                label=label,
                pinned=pinned,
                pin_reason="kept for the incident review" if pinned else None,
            )
            backdate(store, backup, age)
            if verified:
                verify.verify(store, backup)
            made.append(backup)
    finally:
        target.dispose()
        store.close()
    return made


def backdate(store: Store, backup: Backup, age: timedelta) -> None:
    """Move a backup's times (manifest, index and file name) back by age."""
    old_manifest = backup.manifest_path
    backup.created_at -= age
    if backup.finished_at is not None:
        backup.finished_at -= age
    name = catalog.file_name(
        backup.target, backup.dialect, backup.id, backup.created_at
    )
    moved = backup.path.with_name(name)
    os.replace(backup.path, moved)
    backup.path = moved
    backup.manifest.update(
        file=name,
        finished_at=backup.finished_at.isoformat() if backup.finished_at else None,
    )
    catalog.save(store, backup)
    if old_manifest != backup.manifest_path:
        old_manifest.unlink(missing_ok=True)
