"""The one error tree of dbr: a title, its cause, and what to do about it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3


class DbrError(Exception):
    """Something dbr could not do; carries what an operator needs to act."""

    exit_code = EXIT_FAILED

    def __init__(self, title: str, *, cause: str = "", hint: str = "") -> None:
        super().__init__(title)
        self.title = title
        self.cause = cause
        self.hint = hint

    def __str__(self) -> str:
        parts = [self.title]
        if self.cause:
            parts.append(self.cause)
        if self.hint:
            parts.append(self.hint)
        return ": ".join(parts[:2]) + (f". {parts[2]}" if len(parts) > 2 else "")


class ConfigError(DbrError):
    """dbr.toml or a command's arguments are wrong."""

    exit_code = EXIT_USAGE


class Refused(DbrError):
    """dbr declined to act: a lock is held, or nobody confirmed."""

    exit_code = EXIT_REFUSED


class LockHeld(Refused):
    """Another operation holds the target's lock."""

    def __init__(self, target: str, holder: dict, *, stale: bool = False) -> None:
        who = (
            f"{holder.get('user')}@{holder.get('host')} "
            f"(pid {holder.get('pid')}, operation {holder.get('operation_id')}, "
            f"since {holder.get('acquired_at')})"
        )
        hint = (
            "the holding process is gone; break the lock with --break-lock"
            if stale
            else "wait for it to finish, or ask its owner"
        )
        super().__init__(
            f"target {target!r} is locked", cause=f"held by {who}", hint=hint
        )
        self.target = target
        self.holder = holder
        self.stale = stale


class NotConfirmed(Refused):
    """A plan was shown but not confirmed."""


class Cancelled(DbrError):
    """The operator cancelled between steps."""
