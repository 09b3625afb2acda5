"""The command palette lists every action of the console with its key."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.actions import (
    BACKUP_ACTIONS,
    CHANGING,
    HEALTH_ACTIONS,
    MIGRATION_ACTIONS,
    SCREEN_ACTIONS,
    Action,
)

PANE_OF = {
    id(a): pane
    for pane, group in (
        ("migrations", MIGRATION_ACTIONS),
        ("backups", BACKUP_ACTIONS),
        ("health", HEALTH_ACTIONS),
    )
    for a in group
}


class ActionsProvider(Provider):
    """Every action of the main screen and its panes, named with its key."""

    def _actions(self) -> list[tuple[str, str, Action]]:
        from console.screens.main import MainScreen

        if not isinstance(self.screen, MainScreen):
            return self._screen_actions()
        read_only = getattr(self.app, "read_only", False)
        found = []
        for action in (
            SCREEN_ACTIONS + MIGRATION_ACTIONS + BACKUP_ACTIONS + HEALTH_ACTIONS
        ):
            key = action.key.replace("slash", "/")
            name = f"{action.title} · key {key}"
            help_text = (
                "disabled: read-only"
                if (read_only and action.action in CHANGING)
                else ""
            )
            found.append((name, help_text, action))
        return found

    def _screen_actions(self) -> list[tuple[str, str, Action]]:
        """On a flow's screen: its own keys (confirm, cancel, back...)."""
        found = []
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.system:
                continue
            action = Action(key, binding.action, binding.tooltip or binding.description)
            help_text = "" if active.enabled else "not available now"
            found.append(
                (
                    f"{action.title} · key {binding.key_display or key}",
                    help_text,
                    action,
                )
            )
        return found

    async def discover(self) -> Hits:
        for name, help_text, action in self._actions():
            yield DiscoveryHit(name, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self._actions():
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(name),
                    partial(self._run, action),
                    help=help_text,
                )

    async def _run(self, action: Action) -> None:
        screen = self.screen
        pane = PANE_OF.get(id(action))
        node = screen
        active = screen.active_bindings.get(action.key)
        if active is not None and active.binding.action == action.action:
            node = active.node
        if pane is not None:
            screen.show_pane(pane)  # type: ignore[attr-defined]
            node = screen.query_one(f"#{pane}")
        if getattr(self.app, "read_only", False) and action.action in CHANGING:
            self.app.notify(
                f"{action.title}: disabled in read-only mode", severity="warning"
            )
            return
        name = action.action
        if name.startswith("app."):
            await self.app.run_action(name.removeprefix("app."))
        else:
            await node.run_action(name)
