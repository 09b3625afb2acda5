"""The main screen: header, four panes (tabs when small), alerts, footer."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Container
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Static, Tab, Tabs
from textual.worker import get_current_worker

from console import messages as msg
from console.actions import CHANGING, SCREEN_ACTIONS, bindings
from console.format import score_words
from console.loading import PaneLoaders
from console.widgets.alerts import AlertsStream
from console.widgets.backups_pane import BackupsPane
from console.widgets.header import TargetHeader, TargetLine
from console.widgets.health_pane import HealthPane
from console.widgets.journal_pane import JournalPane
from console.widgets.migrations_pane import MigrationsPane
from console.widgets.pane import Pane
from console.widgets.table import VirtualTable
from core.errors import DbrError
from core.events import TRIGGER_FIRED

log = logging.getLogger(__name__)

PANES = ("migrations", "backups", "health", "journal")
WIDE = (140, 40)  # from this size on, all four panes at once
POLL_SECONDS = 2.0
HEALTH_EVERY = 3  # polls between reloads of the health samples (kept by others)


class MainScreen(PaneLoaders, Screen):
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCREEN_ACTIONS)

    def __init__(self) -> None:
        super().__init__()
        self.active = "migrations"
        self.last_event_id = 0
        self.polling = False
        self.suggestion: dict[str, Any] | None = None
        self.operations: list[dict[str, Any]] = []
        self.ticks = 0
        self.scores: dict[str, Any] = {}
        self.announced_running = False

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TargetHeader(read_only=self.app.read_only, id="header")
        yield Static("", id="banner")
        yield Tabs(
            *(
                Tab(f"{p.KEY} {p.TITLE}", id=f"tab-{name}")
                for name, p in zip(
                    PANES,
                    (MigrationsPane, BackupsPane, HealthPane, JournalPane),
                    strict=True,
                )
            ),
            id="pane-tabs",
        )
        with Container(id="panes"):
            yield MigrationsPane(id="migrations")
            yield BackupsPane(id="backups")
            yield HealthPane(id="health")
            yield JournalPane(id="journal")
        yield AlertsStream(id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self._layout(self.app.size.width, self.app.size.height)
        self.show_pane(self.active)
        # Paint the whole screen first; data follows from the workers.
        self.call_after_refresh(self.open_workspace)

    def on_screen_resume(self) -> None:
        # Back from a flow: what it did shows at once, not at the next poll.
        if self.app.ws.settings.targets and "journal" in self.app.ws.__dict__:
            target = self.app.target_name
            self.load_journal(target)
            self.load_migrations(target)
            self.load_backups(target)

    def on_resize(self, event: Resize) -> None:
        self._layout(event.size.width, event.size.height)

    def _layout(self, width: int, height: int) -> None:
        self.set_class(width >= WIDE[0] and height >= WIDE[1], "-wide")

    def show_pane(self, name: str) -> None:
        self.active = name
        for pane in self.query(Pane):
            pane.set_class(pane.id == name, "-active")
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{name}":
            tabs.active = f"tab-{name}"
        self.query_one(f"#{name} VirtualTable", VirtualTable).focus()

    @on(Tabs.TabActivated)
    def _tab(self, event: Tabs.TabActivated) -> None:
        name = (event.tab.id or "").removeprefix("tab-")
        if name in PANES and name != self.active:
            self.show_pane(name)

    def on_descendant_focus(self, event: Any) -> None:
        # In the wide layout, focus decides which pane the tabs point at.
        for pane in event.widget.ancestors_with_self:
            if isinstance(pane, Pane) and pane.id != self.active:
                self.active = pane.id or self.active
                self.query_one(Tabs).active = f"tab-{self.active}"
                break

    # -- actions ----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_suggestion" and self.suggestion is None:
            return False  # hidden until a trigger fires
        if action in CHANGING and self.app.read_only:
            return None  # shown, greyed out: read-only mode
        return True

    def action_pane(self, name: str) -> None:
        self.show_pane(name)

    def action_refresh(self) -> None:
        self.load_all()

    def action_switch_target(self) -> None:
        from console.screens.targets import TargetsScreen

        def chosen(name: str | None) -> None:
            if name and name != self.app.target_name:
                self.app.target_name = name
                self.last_event_id = 0
                self.query_one(AlertsStream).clear()
                # Nothing of the previous target may stay under the new one's name.
                self.query_one(MigrationsPane).clear()
                self.query_one(BackupsPane).clear()
                self.query_one(JournalPane).show_operations([])
                self.query_one(JournalPane).show_detail(None)
                self.operations = []
                self.load_all()

        scores = {}
        for name in self.app.target_names:
            sample = self.scores.get(name)
            scores[name] = (
                score_words(
                    sample.score, sample.threshold, sample.healthy, sample.conclusive
                )[0]
                if sample
                else "score unknown (not measured yet)"
            )
        self.app.push_screen(
            TargetsScreen(self.app.target_names, self.app.target_name, scores), chosen
        )

    def action_export_timeline(self) -> None:
        from console.screens.timeline import TimelineScreen

        self.app.push_screen(TimelineScreen(self.app.target_name))

    def action_roll_back_or_restore(self) -> None:
        from console.screens.choose import ChooseScreen

        self.app.push_screen(ChooseScreen(self.app.target_name))

    def action_open_suggestion(self) -> None:
        if self.suggestion is None:
            return
        data = self.suggestion.get("data") or {}
        self.open_strategy(
            self.suggestion.get("target") or self.app.target_name, data["strategy"]
        )
        self.query_one("#banner", Static).remove_class("-shown")
        self.suggestion = None
        self.refresh_bindings()

    def open_strategy(self, target: str, strategy: str) -> None:
        """Preview the plan a rollback strategy makes; run it with `dbr rollback`."""
        from console.screens.plan import PlanScreen
        from core import rollback

        ws = self.app.ws

        def words(plan: Any, safety: bool) -> list[str]:
            return ["rollback", "run", target, "--strategy", strategy, "--yes"] + (
                [] if safety else ["--no-safety-backup"]
            )

        self.app.push_screen(
            PlanScreen(
                f"{strategy} on {target}",
                lambda: rollback.plan_strategy(ws, target, strategy),
                words,
            )
        )

    def open_plan(self, title: str, planner: Any, words: Any) -> None:
        from console.screens.plan import PlanScreen

        self.app.push_screen(PlanScreen(title, planner, words))

    def follow(self, argv_words: list[str], title: str, target: str) -> None:
        """Run dbr words detached and show their progress (non-destructive runs)."""
        from console import runner
        from console.screens.progress import ProgressScreen

        run = runner.start(runner.command(self.app.ws.settings.path, argv_words))
        self.app.push_screen(ProgressScreen(target, run=run, plan={"title": title}))

    def toggle_pin(self, backup_id: str, pin: bool) -> None:
        self._pin(backup_id, pin)

    @work(thread=True, exclusive=True, group="pin", exit_on_error=False)
    def _pin(self, backup_id: str, pin: bool) -> None:
        from core import backups

        try:
            if pin:
                backups.pin(self.app.ws, backup_id, reason="pinned in dbr-console")
            else:
                backups.unpin(self.app.ws, backup_id)
        except DbrError as exc:
            self.app.call_from_thread(
                self.app.notify, f"{exc.title}: {exc.hint}", severity="error"
            )
            return
        self.app.call_from_thread(
            self.app.notify, f"backup {backup_id} {'pinned' if pin else 'unpinned'}"
        )
        self.app.call_from_thread(self.load_backups, self.app.target_name)

    @on(VirtualTable.Selected, "#journal-table")
    def _operation_selected(self, event: VirtualTable.Selected) -> None:
        from console.screens.progress import ProgressScreen

        operation = next((o for o in self.operations if o["id"] == event.row.key), None)
        if operation is None:
            return
        self.app.push_screen(
            ProgressScreen(
                operation["target"],
                operation_id=operation["id"],
                plan=operation.get("plan"),
            )
        )

    # -- loading ----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="workspace", exit_on_error=False)
    def open_workspace(self) -> None:
        try:
            journal = self.app.ws.journal  # opens (and if need be upgrades) the store
            del journal
        except DbrError as exc:
            self.post_message(msg.WorkspaceFailed(exc.title, str(exc.hint or "")))
            return
        self.post_message(msg.WorkspaceOpened(list(self.app.ws.settings.targets)))

    def on_workspace_opened(self, message: msg.WorkspaceOpened) -> None:
        self.load_all()
        self.set_interval(POLL_SECONDS, self.poll)

    def on_workspace_failed(self, message: msg.WorkspaceFailed) -> None:
        for pane in self.query(Pane):
            pane.say(f"{message.title}. {message.detail}")
        self.app.notify(
            f"{message.title}\n{message.detail}", severity="error", timeout=30
        )

    def load_all(self) -> None:
        target = self.app.target_name
        self.show_header()
        self.load_journal(target)
        self.poll_events()
        for pane in ("migrations", "backups", "health"):
            self.query_one(f"#{pane}", Pane).say("loading…")
        self.load_migrations(target)
        self.load_backups(target)
        self.load_health(target, measure=True)
        self.load_scores()

    def poll(self) -> None:
        if not self.polling:
            self.polling = True
            self.load_journal(self.app.target_name)
            self.poll_events()
        self.ticks += 1
        if self.ticks % HEALTH_EVERY == 0:
            self.load_health(self.app.target_name, measure=False)
            self.load_scores()

    @work(thread=True, exclusive=True, group="journal", exit_on_error=False)
    def load_journal(self, target: str) -> None:
        try:
            operations = self.app.ws.journal.operations(target, limit=500)
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(
                msg.PaneFailed("journal", target, "cannot read the journal", str(exc))
            )
            return
        if not get_current_worker().is_cancelled:
            self.post_message(msg.JournalLoaded(target, operations))

    def on_journal_loaded(self, message: msg.JournalLoaded) -> None:
        if message.target != self.app.target_name:
            return
        before = {o["id"]: o["status"] for o in self.operations}
        self.operations = message.operations
        pane = self.query_one(JournalPane)
        pane.say("")
        pane.show_operations(message.operations)
        self.show_header()
        running = [o for o in message.operations if o["status"] == "running"]
        if running and not self.announced_running:
            self.announced_running = True
            self.app.notify(
                f"{running[0]['title']} is running (by "
                f"{running[0]['user']}, pid {running[0]['pid']}); enter "
                "on it in the Rollback log follows it",
                timeout=10,
            )
        ended = [
            o
            for o in message.operations
            if before.get(o["id"]) == "running" and o["status"] != "running"
        ]
        for operation in ended:
            self.app.notify(
                f"{operation['title']}: {operation['status']}",
                severity="information"
                if operation["status"] == "succeeded"
                else "error",
            )
        if ended:
            self.load_migrations(self.app.target_name)
            self.load_backups(self.app.target_name)

    def on_pane_failed(self, message: msg.PaneFailed) -> None:
        self.polling = False
        if message.target != self.app.target_name:
            return  # news of a target no longer shown
        self.query_one(f"#{message.pane}", Pane).say(
            f"{message.title}: {message.detail}"
        )

    @on(VirtualTable.Highlighted, "#journal-table")
    def _operation_highlighted(self, event: VirtualTable.Highlighted) -> None:
        if event.row is not None:
            self.load_operation(event.row.key)
        else:
            self.query_one(JournalPane).show_detail(None)

    @work(thread=True, exclusive=True, group="operation", exit_on_error=False)
    def load_operation(self, operation_id: str) -> None:
        try:
            operation = self.app.ws.journal.operation(operation_id)
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            log.warning("cannot read operation %s: %s", operation_id, exc)
            return
        if not get_current_worker().is_cancelled:
            self.post_message(msg.OperationLoaded(operation))

    def on_operation_loaded(self, message: msg.OperationLoaded) -> None:
        self.query_one(JournalPane).show_detail(message.operation)

    @work(thread=True, exclusive=True, group="events", exit_on_error=False)
    def poll_events(self) -> None:
        try:
            events = self.app.ws.journal.events(self.app.target_name, limit=200)
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(
                msg.PaneFailed(
                    "journal", self.app.target_name, "cannot read the events", str(exc)
                )
            )
            return
        fresh = [e for e in reversed(events) if e["id"] > self.last_event_id]
        self.post_message(msg.EventsArrived(fresh))

    def on_events_arrived(self, message: msg.EventsArrived) -> None:
        self.polling = False
        first = self.last_event_id == 0
        alerts = self.query_one(AlertsStream)
        for event in message.events:
            self.last_event_id = max(self.last_event_id, event["id"])
            alerts.add(event)
            data = event.get("data") or {}
            if (
                event["kind"] == TRIGGER_FIRED
                and data.get("mode", "suggest") == "suggest"
                and data.get("strategy")
            ):
                self.post_message(
                    msg.TriggerFired(
                        event.get("target") or self.app.target_name,
                        data.get("trigger", ""),
                        data["strategy"],
                        event["message"],
                    )
                )
            if not first and event["severity"] in ("warning", "critical"):
                self.app.notify(
                    event["message"],
                    title=f"{event['severity'].upper()} {event.get('target') or ''}",
                    severity="error" if event["severity"] == "critical" else "warning",
                )

    def on_trigger_fired(self, message: msg.TriggerFired) -> None:
        self.suggestion = {
            "target": message.target,
            "data": {"strategy": message.strategy, "trigger": message.trigger},
        }
        banner = self.query_one("#banner", Static)
        banner.update(f"TRIGGER FIRED: {message.message} — press f to open its plan")
        banner.add_class("-shown")
        self.refresh_bindings()

    def show_header(self) -> None:
        app = self.app
        lines = {}
        for name in app.target_names:
            config = app.ws.settings.targets[name]
            line = TargetLine(name, config.dialect, _host(config.url, config.dialect))
            sample = self.scores.get(name)
            if sample is not None:
                line.score, line.threshold = sample.score, sample.threshold
                line.healthy, line.conclusive = sample.healthy, sample.conclusive
            lines[name] = line
        running = next(
            (
                f"{op['title']} ({op['id']})"
                for op in self.operations
                if op["status"] == "running"
            ),
            None,
        )
        self.query_one(TargetHeader).show(lines.get(app.target_name), lines, running)


def _host(url: str, dialect: str) -> str:
    """Where the target lives, password-free; a malformed URL says so, not crashes."""
    from core.secrets import display_url

    try:
        display = display_url(url)
    except (ValueError, TypeError):
        return "(URL not readable: check dbr.toml)"
    if dialect == "sqlite":
        return display.split("///", 1)[-1].rsplit("/", 1)[-1]
    return display.split("@", 1)[-1] if "@" in display else display
