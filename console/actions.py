"""The console's actions in one list: key, name, and whether it changes anything.

The footer, the command palette and --read-only all read this list, so an action
cannot exist without a key, nor escape read-only mode by being forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    key: str
    action: str
    title: str
    short: str = ""  # the footer's word for it
    changes: bool = False
    show: bool = True
    preview: bool = False  # opens a plan preview only: allowed in read-only mode


SCREEN_ACTIONS = [
    Action("1", "pane('migrations')", "Migrations pane", show=False),
    Action("2", "pane('backups')", "Backups pane", show=False),
    Action("3", "pane('health')", "Health pane", show=False),
    Action("4", "pane('journal')", "Rollback log pane", show=False),
    Action("t", "switch_target", "Switch target", "Target"),
    Action("o", "roll_back_or_restore", "Roll back or restore?", "Roll back?"),
    # Shown only while a fired trigger's banner is up (see MainScreen.check_action).
    Action(
        "f",
        "open_suggestion",
        "Open the fired trigger's plan",
        "Suggested plan",
        changes=True,
        preview=True,
    ),
    Action("e", "export_timeline", "Export incident timeline", "Timeline"),
    Action("ctrl+r", "refresh", "Refresh", show=False),
    Action("q", "app.quit", "Quit", "Quit"),
]

MIGRATION_ACTIONS = [
    Action(
        "d",
        "downgrade",
        "Downgrade to the selected revision",
        "Downgrade",
        changes=True,
        preview=True,
    ),
    Action(
        "u",
        "upgrade",
        "Upgrade to the selected revision",
        "Upgrade",
        changes=True,
        preview=True,
    ),
]

# In the footer's order; what does not fit 80 columns is hidden there (show=False)
# and reached through ctrl+p or ?, which list every action with its key.
BACKUP_ACTIONS = [
    Action(
        "R",
        "restore",
        "Restore the selected backup",
        "Restore",
        changes=True,
        preview=True,
    ),
    Action("b", "create_backup", "Create a backup", "Backup", changes=True),
    Action("v", "verify", "Verify the selected backup", "Verify", changes=True),
    Action(
        "V",
        "deep_verify",
        "Deep verify (restore into scratch)",
        "Deep verify",
        changes=True,
        show=False,
    ),
    Action("p", "pin", "Pin or unpin the selected backup", "Pin", changes=True),
    Action("space", "tag", "Tag or untag for removal", show=False),
    Action(
        "P",
        "prune",
        "Preview pruning (the tagged backups, or the policy)",
        "Prune",
        changes=True,
    ),
    Action("slash", "filter", "Filter backups", "Filter"),
    Action("s", "sort", "Sort by the next column", "Sort", show=False),
]

HEALTH_ACTIONS = [
    Action("m", "measure", "Measure health now", "Measure"),
]

ALL = SCREEN_ACTIONS + MIGRATION_ACTIONS + BACKUP_ACTIONS + HEALTH_ACTIONS
# Disabled in read-only mode; a preview changes nothing, and its Confirm is disabled.
CHANGING = {a.action for a in ALL if a.changes and not a.preview}
# Keys of flow screens that run something (the plan preview's confirm, say).
RUNNING = {"confirm", "toggle_safety"}
TITLES = {a.action: a.title for a in ALL} | {
    "confirm": "Confirm",
    "toggle_safety": "Safety backup",
}


def bindings(actions: list[Action]) -> list:
    from textual.binding import Binding

    return [
        Binding(a.key, a.action, a.short or a.title, show=a.show, tooltip=a.title)
        for a in actions
    ]
