"""Instance health: Online while its agent's stream is open and heartbeating, and the
opendeploy_instances{health} gauge, refreshed whenever that can change."""

from __future__ import annotations

from services.core.metrics import INSTANCES
from services.fleet.domain import Health, Instance
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore

MISSED_HEARTBEATS_OFFLINE = 3


class FleetHealth:
    def __init__(
        self, store: FleetStore, sessions: SessionRegistry, heartbeat_interval_seconds: int
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._window = heartbeat_interval_seconds * MISSED_HEARTBEATS_OFFLINE

    def of(self, instance: Instance) -> Health:
        online = self._sessions.is_online(instance.name, self._window)
        return Health.ONLINE if online else Health.OFFLINE

    async def refresh_metrics(self) -> None:
        """Set the gauge from the registered instances (on register, connect, disconnect)."""
        registered = [i for i in await self._store.all() if i.registered]
        online = sum(1 for i in registered if self.of(i) is Health.ONLINE)
        INSTANCES.labels(Health.ONLINE).set(online)
        INSTANCES.labels(Health.OFFLINE).set(len(registered) - online)
