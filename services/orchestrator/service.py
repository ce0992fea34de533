"""Assembles the orchestrator: database, peers, control loop and servicer."""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from deploy.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.core.config import ServerConfig
from services.core.db import Database, open_database
from services.core.peers import peer_channel
from services.core.pki import command_signing_key
from services.core.signal import ChangeSignal
from services.orchestrator.alarms import PrometheusAlarms
from services.orchestrator.catchup import CatchUp
from services.orchestrator.config_store import ConfigStore
from services.orchestrator.controller import RolloutController
from services.orchestrator.deployments import Deployments
from services.orchestrator.group_store import GroupStore
from services.orchestrator.logs import DeploymentLogs
from services.orchestrator.outbox import DeliveryStore
from services.orchestrator.peers import FleetClient, RegistryClient, TrafficClient
from services.orchestrator.provisioner import Provisioner, Provisioners
from services.orchestrator.servicer import OrchestratorServicer
from services.orchestrator.store import DeploymentStore
from services.orchestrator.triggers import TriggerDispatcher


class OrchestratorService:
    grpc_names: tuple[str, ...] = (
        orchestrator_pb2.DESCRIPTOR.services_by_name["Orchestrator"].full_name,
    )

    def __init__(self, db: Database, config: ServerConfig, command_key: Ed25519PrivateKey) -> None:
        self._db = db
        self._channels = [
            peer_channel(config, "registry"),
            peer_channel(config, "fleet"),
            peer_channel(config, "traffic"),
        ]
        registry = RegistryClient(self._channels[0])
        fleet = FleetClient(self._channels[1], command_key)
        traffic = TrafficClient(self._channels[2])
        self._changes = changes = ChangeSignal()
        provisioners = Provisioners(
            {name: Provisioner(name, **spec) for name, spec in config.provisioners.items()},
            config.outbound,
        )
        outbox = ChangeSignal()
        groups, deployments = GroupStore(db), DeploymentStore(db, outbox)
        self.locate_deployment = deployments.group_of
        configs = ConfigStore(db)
        self._controller = RolloutController(
            deployments,
            fleet,
            traffic,
            changes,
            groups,
            provisioners,
            on_succeeded=lambda group_id: catch_up.request(group_id),
            alarms=PrometheusAlarms(config.prometheus_url) if config.prometheus_url else None,
            alarm_poll_seconds=config.alarm_poll_seconds,
        )
        service = Deployments(
            groups, deployments, configs, registry, fleet, traffic, self._controller, provisioners
        )
        catch_up = CatchUp(
            groups, deployments, fleet, service, on_fleet_change=self._controller.fleet_changed
        )
        self._catch_up = catch_up
        self._triggers = TriggerDispatcher(DeliveryStore(db), outbox, config.outbound)
        self._servicer = OrchestratorServicer(
            groups,
            deployments,
            configs,
            service,
            self._controller,
            changes,
            DeploymentLogs(deployments, fleet, changes),
        )

    def add_to_server(self, server: aio.Server) -> None:
        orchestrator_pb2_grpc.add_OrchestratorServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        await self._triggers.start()
        await self._controller.start()
        await self._catch_up.start()

    async def stop(self) -> None:
        self._changes.close()  # ends WatchDeployment streams
        await self._catch_up.stop()
        await self._controller.stop()
        await self._triggers.stop()
        for channel in self._channels:
            await channel.close()
        await self._db.close()


async def create_orchestrator(config: ServerConfig) -> OrchestratorService:
    command_key = await asyncio.to_thread(command_signing_key, config.authority_dir)
    db = await open_database(config.database_url_for("orchestrator"), "orchestrator")
    return OrchestratorService(db, config, command_key)
