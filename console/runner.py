"""Operations run in a detached `dbr` process, so they outlive the console.

The console confirms a plan, then starts `python -m console.cli ... --yes` in its
own session (an SSH drop that kills the console does not reach it) and follows it
through the journal. Its output goes to a log file, never to the console's screen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.config import data_dir


@dataclass
class Run:
    argv: list[str]
    pid: int
    started_at: datetime
    log_path: Path
    process: subprocess.Popen | None = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def stop_between_steps(self) -> None:
        """Ask the run to stop at the next step boundary (the CLI's SIGTERM)."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)


def command(config: Path | str | None, words: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "console.cli"]
    if config is not None:
        argv += ["--config", str(config)]
    return argv + words


def start(argv: list[str], *, log_dir: Path | None = None) -> Run:
    """Start argv detached from the console's session and terminal."""
    folder = log_dir or data_dir() / "runs"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = datetime.now(UTC)
    log_path = folder / f"{started:%Y%m%dT%H%M%S%f}.log"
    with open(log_path, "wb") as out:
        os.chmod(log_path, 0o600)
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=os.getcwd(),
        )
    return Run(argv, process.pid, started, log_path, process)


def cli_has(words: list[str]) -> bool:
    """Whether this build's `dbr` knows the verb that words start with."""
    import argparse

    from console.cli import build_parser

    parser: argparse.ArgumentParser = build_parser()
    for word in words[:2]:
        choices = next(
            (
                a.choices
                for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)
            ),
            None,
        )
        if not choices or word not in choices:
            return False
        parser = choices[word]
    return True
