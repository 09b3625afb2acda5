"""dbr-console: placeholder until the console issue lands."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("dbr-console is being built")
