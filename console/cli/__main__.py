"""`python -m console.cli` runs `dbr`; the console starts operations this way."""

from console.cli import entry

entry()
