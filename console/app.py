"""dbr-console: the rollback console an on-call engineer drives over SSH."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.events import Key

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

    def __init__(
        self, ws: Workspace, *, target: str | None = None, read_only: bool = False
    ) -> None:
        super().__init__()
        self.ws = ws
        self.read_only = read_only
        self.target_names = list(ws.settings.targets)
        if target is not None and target not in ws.settings.targets:
            raise ConfigError(
                f"no target named {target!r} in {ws.settings.where()}",
                hint="choose one of: "
                + (", ".join(self.target_names) or "(none configured)"),
            )
        if not self.target_names:
            raise ConfigError(
                f"no targets in {ws.settings.where()}",
                hint="add a [targets.NAME] table, or try `dbr-console --demo`",
            )
        self.target_name = target or self.target_names[0]
        self.demo_dir: Path | None = None  # set by --demo: said on start and exit
        if read_only:
            self.sub_title = "read-only"

    def on_mount(self) -> None:
        from console.screens.main import MainScreen

        asyncio.get_running_loop().set_default_executor(_UnwaitedExecutor())
        # What start-up built lives as long as the app: keep the collector's full
        # sweeps off it, so thousands of catalog rows do not slow every later one.
        gc.freeze()
        self.push_screen(MainScreen())
        if self.demo_dir is not None:
            self.sub_title = " · ".join(
                x for x in (self.sub_title, f"demo workspace in {self.demo_dir}") if x
            )
            self.notify(
                f"demo workspace built in {self.demo_dir}; it is kept on quit",
                timeout=8,
            )

    def on_rollback_confirmed(self, message: RollbackConfirmed) -> None:
        log.info(
            "confirmed in the console; running pid %s: %s",
            message.pid,
            redact(" ".join(message.argv)),
        )

    def on_key(self, event: Key) -> None:
        # A disabled binding swallows its key without a word; in read-only mode
        # the operator is told why nothing happened.
        if not self.read_only:
            return
        from console.actions import CHANGING, RUNNING, TITLES

        active = self.screen.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        action = active.binding.action
        if action in CHANGING or action in RUNNING:
            self.notify(
                f"read-only: {TITLES.get(action, action)} is disabled",
                severity="warning",
                timeout=4,
            )

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
    """A fresh demo workspace in a new temporary folder; the path of its dbr.toml.

    Fresh on every run: the demo's data ages (health falls, alerts pile up), so a
    reused one would show yesterday's state, not the one the README describes.
    """
    import tempfile

    from core.demo import init_demo

    directory = Path(tempfile.mkdtemp(prefix="dbr-demo-"))
    log.info("building the demo workspace in %s", directory)
    return init_demo(directory, force=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dbr-console",
        description="The rollback console: migrations, backups, health and the "
        "rollback log of every target, with plan, preview, confirm, execute, verify.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="dbr.toml to use (default: $DBR_CONFIG, ./dbr.toml, "
        "then the user's config folder)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open a demo workspace built on the spot in a new "
        "temporary folder (dbr-demo-*), kept afterwards for `dbr "
        "--config DIR/dbr.toml`",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="look, never change: every changing action is disabled",
    )
    parser.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="the target to show first (default: the first one)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The console owns the terminal: diagnostics go to a file, never to the screen.
    log_dir = Path(os.environ.get("DBR_LOG_DIR") or data_dir())
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_dir / "console.log")
        handler.addFilter(RedactingFilter())
        logging.basicConfig(
            handlers=[handler],
            level=logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
    except OSError:
        logging.disable(logging.CRITICAL)
    try:
        if args.demo and args.config:
            raise ConfigError(
                "--demo and --config cannot be used together",
                hint="--demo opens the demo workspace's own dbr.toml",
            )
        config = demo_config() if args.demo else args.config
        ws = Workspace.open(config)
        app = DbrConsole(ws, target=args.target, read_only=args.read_only)
        if args.demo:
            app.demo_dir = Path(config).parent
    except DbrError as exc:
        from console.cli.common import fail_message

        print(fail_message(exc), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    try:
        app.run()
    except Exception as exc:  # noqa: BLE001 - a readable last word
        print(
            redact(f"dbr-console: internal error: {type(exc).__name__}: {exc}"),
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    # A worker may still wait on a dead server (up to its timeout); the operator
    # asked to quit, so do not join it at exit. Nothing it holds needs finishing.
    logging.shutdown()
    if args.demo:
        folder = Path(config).parent
        print(
            f"dbr-console: demo workspace kept in {folder}; `dbr --config "
            f"{folder}/dbr.toml ...` works on it",
            file=sys.stderr,
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)


if __name__ == "__main__":
    main()
