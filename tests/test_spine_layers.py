"""The engine stands alone: importing core never pulls in the UI."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def core_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(core.__path__, "core.")
        if ".state_migrations" not in info.name and "demo_data" not in info.name
    )


def test_importing_every_core_module_never_imports_textual_rich_or_console() -> None:
    modules = core_modules()
    assert "core.executor" in modules and "core.journal" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "ui = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'rich', 'console'))\n"
        "print(','.join(ui))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == ""


def test_core_source_has_no_ui_import_statements() -> None:
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            words = line.split()
            if (
                words[:1] in (["import"], ["from"])
                and len(words) > 1
                and words[1].split(".")[0] in ("textual", "rich", "console")
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []


def test_the_state_head_the_store_trusts_is_the_newest_state_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from core import state

    config = Config()
    config.set_main_option(
        "script_location", str(Path(state.__file__).parent / "state_migrations")
    )
    assert ScriptDirectory.from_config(config).get_heads() == [state.STATE_HEAD]
