"""The main screen's thread workers: each asks one engine and posts what it got.

Every call that can touch a database runs here, off the UI thread, and ends in a
message: data, "failed" with the reason, or "not available" for a missing engine.
"""

from __future__ import annotations

import logging

from textual import work
from textual.worker import get_current_worker

from console import messages as msg
from console.engines import engine, missing
from console.widgets.backups_pane import BackupsPane
from console.widgets.health_pane import HealthPane, check_limits
from console.widgets.migrations_pane import MigrationsPane
from console.widgets.pane import Pane
from core.errors import DbrError

log = logging.getLogger(__name__)


def _why(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, DbrError):
        return exc.title, "; ".join(x for x in (exc.cause, exc.hint) if x)
    return type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else ""


class PaneLoaders:
    """Mixed into MainScreen: loaders for the Migrations, Backups and Health panes.

    Not a Textual class, so @on handlers here would never be registered: the
    panes follow their own cursor (on_virtual_table_highlighted).
    """

    # The Screen it is mixed into provides app, post_message, query_one, scores.

    # -- migrations -------------------------------------------------------------

    @work(thread=True, exclusive=True, group="migrations", exit_on_error=False)
    def load_migrations(self, target: str) -> None:
        migrations = engine("migrations")
        if migrations is None:
            self.post_message(msg.PaneUnavailable("migrations", missing("migrations")))
            return
        resolved = self.app.ws.target(target)
        if resolved.config.alembic is None:
            self.post_message(
                msg.PaneUnavailable(
                    "migrations",
                    f"{target} has no Alembic project: set alembic in "
                    f"[targets.{target}] of dbr.toml to see its history",
                )
            )
            return
        try:
            history = migrations.history(resolved)
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(msg.PaneFailed("migrations", target, *_why(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(msg.HistoryLoaded(target, history))

    def on_history_loaded(self, message: msg.HistoryLoaded) -> None:
        if message.target != self.app.target_name:
            return
        pane = self.query_one(MigrationsPane)
        pane.say("")
        pane.show_history(message.history)
        pane.show_selected()

    # -- backups ----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="backups", exit_on_error=False)
    def load_backups(self, target: str) -> None:
        backups = engine("backups")
        if backups is None:
            self.post_message(msg.PaneUnavailable("backups", missing("backups")))
            return
        ws = self.app.ws
        try:
            listed = backups.list_backups(ws, target)
            # The catalog first; retention's verdicts (slower) follow it.
            self.post_message(msg.BackupsLoaded(target, listed, {}))
            if listed and ws.settings.targets[target].retention:
                verdicts = {
                    v.id: v
                    for v in backups.retention_verdicts(ws, target, backups=listed)
                }
                if not get_current_worker().is_cancelled:
                    self.post_message(msg.BackupsLoaded(target, listed, verdicts))
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(msg.PaneFailed("backups", target, *_why(exc)))

    def on_backups_loaded(self, message: msg.BackupsLoaded) -> None:
        if message.target != self.app.target_name:
            return
        pane = self.query_one(BackupsPane)
        policy = self.app.ws.settings.targets[message.target].retention
        pane.say(
            ""
            if message.verdicts or not message.backups
            else "retention verdicts: weighing…"
            if policy
            else "retention verdicts: no [retention] policy for this target"
        )
        pane.show(message.backups, message.verdicts)
        pane.show_selected()

    # -- health -----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="health", exit_on_error=False)
    def load_health(self, target: str, measure: bool = False) -> None:
        health = engine("health")
        if health is None:
            self.post_message(msg.PaneUnavailable("health", missing("health")))
            return
        ws = self.app.ws
        try:
            history = [] if measure else health.recent_samples(ws, target, limit=60)
            if not history:
                health.sample(ws, target)  # kept in the store, like watch's samples
                history = health.recent_samples(ws, target, limit=60)
            triggers = health.trigger_states(ws, target)
        except Exception as exc:  # noqa: BLE001 - worker edge: say why, stay up
            self.post_message(msg.PaneFailed("health", target, *_why(exc)))
            return
        sample = history[0] if history else None
        if not get_current_worker().is_cancelled:
            self.post_message(msg.HealthSampled(target, sample, history, triggers))

    def on_health_sampled(self, message: msg.HealthSampled) -> None:
        if message.target != self.app.target_name:
            return
        pane = self.query_one(HealthPane)
        pane.say("")
        config = self.app.ws.settings.targets[message.target]
        pane.show(
            message.sample, message.history, message.triggers, check_limits(config)
        )
        if message.sample is not None:
            self.scores[message.target] = message.sample
            self.show_header()

    @work(thread=True, exclusive=True, group="scores", exit_on_error=False)
    def load_scores(self) -> None:
        health = engine("health")
        if health is None:
            return
        scores = {}
        for name in self.app.target_names:
            try:
                latest = health.recent_samples(self.app.ws, name, limit=1)
            except Exception as exc:  # noqa: BLE001 - one target hides no other
                log.info("no score for %s: %s", name, exc)
                continue
            if latest:
                scores[name] = latest[0]
        self.post_message(msg.ScoresLoaded(scores))

    def on_scores_loaded(self, message: msg.ScoresLoaded) -> None:
        self.scores.update(message.scores)
        self.show_header()

    def on_pane_unavailable(self, message: msg.PaneUnavailable) -> None:
        self.query_one(f"#{message.pane}", Pane).say(message.reason)
