"""`dbr`: the scriptable face of the engine; results on stdout, the rest on stderr."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from console.cli import backups, health, migrations, spine
from console.cli.common import close_workspaces, fail_message, setup_logging
from core.errors import EXIT_FAILED, EXIT_USAGE, DbrError
from core.secrets import redact

# Each module adds its verbs to the parser; keep this list the one place to extend.
COMMAND_MODULES = [spine, health, migrations, backups]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbr",
        description="Plan, preview, confirm, execute and verify database "
        "rollbacks on PostgreSQL, MySQL/MariaDB and SQLite.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="dbr.toml to use (default: $DBR_CONFIG, ./dbr.toml, "
        "then the user's config folder)",
    )
    parser.add_argument(
        "--json", action="store_true", default=False, help="print results as JSON"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more diagnostics on stderr"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        code = args.handler(args)
    except DbrError as exc:
        print(fail_message(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dbr: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, DBAPIError):  # a driver error no engine function translated
            print(
                fail_message(
                    DbrError(
                        "the database answered with an error",
                        cause=str(exc.orig).strip().splitlines()[0]
                        if exc.orig
                        else str(exc),
                        hint="check the database named in the command exists and is "
                        "reachable; -v shows more",
                    )
                ),
                file=sys.stderr,
            )
            return EXIT_FAILED
        if os.environ.get("DBR_DEBUG"):
            print(redact(traceback.format_exc()), file=sys.stderr)
        print(
            redact(f"dbr: internal error: {type(exc).__name__}: {exc}"), file=sys.stderr
        )
        print("  set DBR_DEBUG=1 for the traceback, and report it", file=sys.stderr)
        return EXIT_FAILED
    finally:
        close_workspaces()
    return EXIT_USAGE if code is None else code


def entry() -> None:
    sys.exit(main())
