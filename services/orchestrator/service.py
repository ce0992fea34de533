"""Assembles the orchestrator: database, peers, control loop and servicer."""

from __future__ import annotations

from grpc import aio

from deploy.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.core.config import ServerConfig
from services.core.db import Database, open_database
from services.core.peers import open_channel
from services.core.signal import ChangeSignal
from services.orchestrator.config_store import ConfigStore
from services.orchestrator.controller import RolloutController
from services.orchestrator.deployments import Deployments
from services.orchestrator.peers import FleetClient, RegistryClient
from services.orchestrator.servicer import OrchestratorServicer
from services.orchestrator.store import DeploymentStore, GroupStore


class OrchestratorService:
    grpc_names: tuple[str, ...] = (
        orchestrator_pb2.DESCRIPTOR.services_by_name["Orchestrator"].full_name,
    )

    def __init__(self, db: Database, config: ServerConfig) -> None:
        self._db = db
        self._channels = [
            open_channel(config.peer_address("registry")),
            open_channel(config.peer_address("fleet")),
        ]
        registry = RegistryClient(self._channels[0])
        fleet = FleetClient(self._channels[1])
        changes = ChangeSignal()
        groups, deployments = GroupStore(db), DeploymentStore(db)
        configs = ConfigStore(db)
        self._controller = RolloutController(deployments, fleet, changes)
        service = Deployments(groups, deployments, configs, registry, fleet, self._controller)
        self._servicer = OrchestratorServicer(groups, deployments, configs, service, changes)

    def add_to_server(self, server: aio.Server) -> None:
        orchestrator_pb2_grpc.add_OrchestratorServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        await self._controller.start()

    async def stop(self) -> None:
        await self._controller.stop()
        for channel in self._channels:
            await channel.close()
        await self._db.close()


async def create_orchestrator(config: ServerConfig) -> OrchestratorService:
    db = await open_database(config.database_url_for("orchestrator"), "orchestrator")
    return OrchestratorService(db, config)
