"""A workspace: settings, state store, journal, event bus, executor and alert sinks.

The CLI and the console each open one and call the same engine functions with it.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property

from core.alerts import Router, build_sinks
from core.config import Settings, load
from core.events import Bus
from core.executor import Executor
from core.journal import Journal
from core.state import Store
from core.targets import Target


class Workspace:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bus = Bus()
        self._targets: dict[str, Target] = {}
        self._router: Router | None = None
        self._closed = False

    @classmethod
    def open(cls, config: str | os.PathLike | None = None) -> Workspace:
        return cls(load(config))

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.state_url)

    @cached_property
    def journal(self) -> Journal:
        journal = Journal(self.store)
        self.bus.subscribe(journal.record)
        return journal

    @cached_property
    def executor(self) -> Executor:
        self.start_alerts()
        return Executor(self.journal, self.bus)

    def start_alerts(self) -> None:
        """Send events to the configured sinks from now on (once per workspace)."""
        if self._router is not None:
            return
        journal = self.journal
        router = Router([], self.settings.quiet_period, journal.record)
        router.sinks = build_sinks(self.settings.sinks, router.failed)
        self.bus.subscribe(router)
        self._router = router

    def target(self, name: str) -> Target:
        if name not in self._targets:
            self._targets[name] = Target(self.settings.target(name))
        return self._targets[name]

    def targets(self) -> list[Target]:
        return [self.target(name) for name in self.settings.targets]

    def close(self, timeout: float = 5.0, stop: threading.Event | None = None) -> None:
        """Deliver pending alerts (within timeout, or until stop is set), then
        let go of connections and the state store; once is enough."""
        if self._closed:
            return
        self._closed = True
        if self._router is not None:
            self._router.close(timeout, stop)
        for target in self._targets.values():
            target.dispose()
        if "store" in self.__dict__:
            self.store.close()
