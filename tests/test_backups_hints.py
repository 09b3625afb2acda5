"""Every `dbr ...` command that a message of core/ or console/ tells the operator to
run parses with the real CLI parser: a hint naming a verb that does not exist sends
the on-call engineer to a usage error at the worst moment."""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
# Placeholders the messages use for values dbr fills in or the operator chooses;
# "1" stands for any of them (a target name, an id, a snapshot number).
PLACEHOLDER = re.compile(r"^(X|[A-Z][A-Z_]*)$")
MENTION = re.compile(r"\bdbr ((?:--?[\w-]+ X )?[a-z][\w-]*(?: [^`\n;,)]*)?)")


def _messages(path: Path) -> Iterator[tuple[int, str]]:
    """Every string literal but docstrings; an f-string's fields read as X."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            skip.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield (
                node.lineno,
                "".join(
                    v.value if isinstance(v, ast.Constant) else "X" for v in node.values
                ),
            )
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
        ):
            yield node.lineno, node.value


def _commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def mentions() -> list[tuple[str, str]]:
    """(where, command line) for each mention of a dbr command in a message.

    A mention is `dbr WORD ...` whose WORD is a command or one letter `s` from
    one (`backup`, `migration`): prose such as "dbr cannot say" is not one.
    """
    commands = _commands()
    near = commands | {c.rstrip("s") for c in commands} | {c + "s" for c in commands}
    found = []
    for folder in ("core", "console"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, text in _messages(path):
                for match in MENTION.finditer(text):
                    for part in match.group(1).split(" or dbr "):
                        words = part.split()
                        verb = next(
                            w for w in words if not w.startswith("-") and w != "X"
                        )
                        if verb in near:
                            found.append(
                                (f"{path.relative_to(ROOT)}:{line}", part.strip())
                            )
    return found


def _argv(command: str) -> list[str]:
    argv = []
    for word in shlex.split(command.replace("[", "").replace("]", "")):
        argv.append("1" if PLACEHOLDER.match(word) else word)
    return argv


def test_the_scan_finds_the_hints_it_is_meant_to_check() -> None:
    found = {command for _, command in mentions()}
    assert "dbr backups list" not in found  # the prefix `dbr ` is not kept
    assert "backups list" in found
    assert any(c.startswith("rollback plan") for c in found)
    assert any(c.startswith("backups verify") for c in found)


@pytest.mark.parametrize("where,command", mentions(), ids=lambda v: str(v))
def test_every_command_a_hint_names_parses(where: str, command: str) -> None:
    if "VERB" in command.split():  # a usage line: any verb of the group
        command = command.replace("VERB", "history")
    argv = _argv(command)
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(
                f"{where}: `dbr {command}` does not parse "
                f"(exit {exc.code}): {errors.getvalue().strip()}"
            )
