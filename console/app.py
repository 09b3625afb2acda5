"""dbr-console: the rollback console an on-call engineer drives over SSH."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from console.commands import ActionsProvider
from console.messages import RollbackConfirmed
from core.config import data_dir
from core.errors import ConfigError, DbrError
from core.secrets import RedactingFilter, redact
from core.targets import Target
from core.workspace import Workspace

log = logging.getLogger(__name__)


class DbrConsole(App):
    """One workspace, one current target; screens for each flow."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # also right for subclasses
    TITLE = "dbr-console"
    COMMANDS: ClassVar = App.COMMANDS | {ActionsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "keys", "Keys", show=False),
    ]

    def __init__(self, ws: Workspace, *, target: str | None = None,
                 read_only: bool = False) -> None:
        super().__init__()
        self.ws = ws
        self.read_only = read_only
        self.target_names = list(ws.settings.targets)
        if target is not None and target not in ws.settings.targets:
            raise ConfigError(f"no target named {target!r} in {ws.settings.where()}",
                              hint="choose one of: " + (", ".join(self.target_names)
                                                        or "(none configured)"))
        if not self.target_names:
            raise ConfigError(f"no targets in {ws.settings.where()}",
                              hint="add a [targets.NAME] table, or try "
                              "`dbr-console --demo`")
        self.target_name = target or self.target_names[0]
        if read_only:
            self.sub_title = "read-only"

    def on_mount(self) -> None:
        from console.screens.main import MainScreen

        asyncio.get_running_loop().set_default_executor(_UnwaitedExecutor())
        self.push_screen(MainScreen())

    def on_rollback_confirmed(self, message: RollbackConfirmed) -> None:
        log.info("confirmed in the console; running pid %s: %s", message.pid,
                 redact(" ".join(message.argv)))

    @property
    def target(self) -> Target:
        return self.ws.target(self.target_name)

    def action_keys(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def on_unmount(self) -> None:
        self.ws.close(timeout=2.0)


class _UnwaitedExecutor(ThreadPoolExecutor):
    """Thread workers whose shutdown does not wait for a stuck database call.

    Workers only read (operations run in their own processes), so a worker still
    waiting on a dead server when the operator quits has nothing to finish.
    """

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=False, cancel_futures=True)


def demo_config() -> Path:
    """The demo workspace in the user's data folder, rebuilt if missing or broken."""
    from core.config import load
    from core.demo import init_demo

    directory = data_dir() / "demo"
    config = directory / "dbr.toml"
    try:
        settings = load(config)
        if not settings.targets["shop"].url.endswith("shop.db") or not (
                directory / "shop.db").stat().st_size:
            raise ConfigError("the demo database is missing")
    except (DbrError, OSError, KeyError) as exc:
        log.info("building the demo workspace in %s (%s)", directory, exc)
        print(f"dbr-console: building the demo workspace in {directory}…",
              file=sys.stderr)
        return init_demo(directory, force=True)
    return config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dbr-console",
        description="The rollback console: migrations, backups, health and the "
        "rollback log of every target, with plan, preview, confirm, execute, verify.")
    parser.add_argument("--config", metavar="PATH",
                        help="dbr.toml to use (default: $DBR_CONFIG, ./dbr.toml, "
                        "then the user's config folder)")
    parser.add_argument("--demo", action="store_true",
                        help="open the demo workspace (built on first use in the "
                        "user's data folder)")
    parser.add_argument("--read-only", action="store_true",
                        help="look, never change: every changing action is disabled")
    parser.add_argument("target", nargs="?", metavar="TARGET",
                        help="the target to show first (default: the first one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The console owns the terminal: diagnostics go to a file, never to the screen.
    log_dir = Path(os.environ.get("DBR_LOG_DIR") or data_dir())
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_dir / "console.log")
        handler.addFilter(RedactingFilter())
        logging.basicConfig(handlers=[handler], level=logging.INFO,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    except OSError:
        logging.disable(logging.CRITICAL)
    try:
        if args.demo and args.config:
            raise ConfigError("--demo and --config cannot be used together",
                              hint="--demo opens the demo workspace's own dbr.toml")
        config = demo_config() if args.demo else args.config
        ws = Workspace.open(config)
        app = DbrConsole(ws, target=args.target, read_only=args.read_only)
    except DbrError as exc:
        from console.cli.common import fail_message

        print(fail_message(exc), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    try:
        app.run()
    except Exception as exc:  # noqa: BLE001 - leave the terminal with a readable last word
        print(redact(f"dbr-console: internal error: {type(exc).__name__}: {exc}"),
              file=sys.stderr)
        raise SystemExit(1) from None
    # A worker may still wait on a dead server (up to its timeout); the operator
    # asked to quit, so do not join it at exit. Nothing it holds needs finishing.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)


if __name__ == "__main__":
    main()
