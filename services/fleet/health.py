"""Instance health: Online while its agent's stream is open and heartbeating; the
opendeploy_instances{health} gauge, refreshed whenever that can change, and
opendeploy_instance_connected{instance_name}, read from the open streams at every scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.core.metrics import INSTANCES
from services.fleet.domain import Health, Instance
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore

MISSED_HEARTBEATS_OFFLINE = 3


class ConnectedInstances(Collector):
    """One sample per registered instance: 1 while its agent is online, else 0 — what
    OpenDeployAgentOffline alerts on, labelled with the instance's name (a label set as large
    as the fleet, never per deployment)."""

    def __init__(self) -> None:
        self.health: FleetHealth | None = None
        self.registered: tuple[str, ...] = ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "opendeploy_instance_connected",
            "1 while the registered instance's agent has an open, heartbeating stream.",
            labels=["instance_name"],
        )
        health = self.health
        if health is not None:
            for name in self.registered:
                family.add_metric([name], 1.0 if health.online(name) else 0.0)
        yield family


CONNECTED = ConnectedInstances()
REGISTRY.register(CONNECTED)


class FleetHealth:
    def __init__(
        self, store: FleetStore, sessions: SessionRegistry, heartbeat_interval_seconds: int
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._window = heartbeat_interval_seconds * MISSED_HEARTBEATS_OFFLINE
        CONNECTED.health = self

    def online(self, name: str) -> bool:
        return self._sessions.is_online(name, self._window)

    def of(self, instance: Instance) -> Health:
        return Health.ONLINE if self.online(instance.name) else Health.OFFLINE

    async def refresh_metrics(self) -> None:
        """Set the gauges from the registered instances (on register, connect, disconnect)."""
        registered = [i for i in await self._store.all() if i.registered]
        CONNECTED.registered = tuple(i.name for i in registered)
        online = sum(1 for i in registered if self.of(i) is Health.ONLINE)
        INSTANCES.labels(Health.ONLINE).set(online)
        INSTANCES.labels(Health.OFFLINE).set(len(registered) - online)
