"""Instance health: Online while its agent's stream is open and heartbeating; the
opendeploy_instances{health} gauge and opendeploy_instance_connected{instance_name}, both
counted from the open streams at every scrape — an agent connecting or going costs no query
(a fleet restart is a thousand of them at once)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.core.metrics import INSTANCES
from services.fleet.domain import Health, Instance
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore


class ConnectedInstances(Collector):
    """One sample per registered instance: 1 while its agent is online, else 0 — what
    OpenDeployAgentOffline alerts on, labelled with the instance's name (a label set as large
    as the fleet, never per deployment)."""

    def __init__(self) -> None:
        self.health: FleetHealth | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "opendeploy_instance_connected",
            "1 while the registered instance's agent has an open, heartbeating stream.",
            labels=["instance_name"],
        )
        health = self.health
        if health is not None:
            for name in sorted(health.names):  # copied in one step (another thread)
                family.add_metric([name], 1.0 if health.online(name) else 0.0)
        yield family


CONNECTED = ConnectedInstances()
REGISTRY.register(CONNECTED)


class FleetHealth:
    def __init__(self, store: FleetStore, sessions: SessionRegistry) -> None:
        self._store = store
        self._sessions = sessions
        self.names: set[str] = set()
        """The registered instances: read at start, kept by this process's registrations."""
        CONNECTED.health = self
        INSTANCES.labels(Health.ONLINE).set_function(self._online_count)
        INSTANCES.labels(Health.OFFLINE).set_function(
            lambda: len(self.names) - self._online_count()
        )

    def online(self, name: str) -> bool:
        return self._sessions.is_online(name)

    def of(self, instance: Instance) -> Health:
        return Health.ONLINE if self.online(instance.name) else Health.OFFLINE

    async def load(self) -> None:
        self.names = set(await self._store.registered_names())

    def registered(self, name: str) -> None:
        self.names.add(name)

    def deregistered(self, name: str) -> None:
        self.names.discard(name)

    def _online_count(self) -> int:
        # A scrape runs on the metrics server's thread: iterate a copy (made in one step).
        return sum(1 for name in tuple(self.names) if self.online(name))
