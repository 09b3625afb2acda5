"""`python -m console.cli`: the dbr CLI, as the console starts it for a detached run."""

from console.cli import entry

entry()
