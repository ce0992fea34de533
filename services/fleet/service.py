"""Assembles the fleet: database, agent sessions, command bus, and both servicers."""

from __future__ import annotations

from datetime import timedelta

from grpc import aio

from deploy.v1 import agent_pb2, agent_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from services.core.config import ServerConfig
from services.core.db import Database, open_database
from services.fleet.changes import InstanceChanges
from services.fleet.commands import CommandBus
from services.fleet.domain import DeadlinePolicy, HeartbeatPolicy
from services.fleet.enrolment import Certificates
from services.fleet.gateway import AgentGatewayServicer
from services.fleet.health import FleetHealth
from services.fleet.output import HookOutput
from services.fleet.servicer import FleetServicer
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore


class FleetService:
    grpc_names: tuple[str, ...] = (
        fleet_pb2.DESCRIPTOR.services_by_name["Fleet"].full_name,
        agent_pb2.DESCRIPTOR.services_by_name["AgentGateway"].full_name,
    )

    def __init__(
        self,
        db: Database,
        heartbeats: HeartbeatPolicy,
        policy: DeadlinePolicy,
        certificates: Certificates,
    ) -> None:
        self._db = db
        store = FleetStore(db)
        self._sessions = SessionRegistry(heartbeats)
        self._bus = bus = CommandBus(store, self._sessions, policy)
        self._health = FleetHealth(store, self._sessions)
        self._changes = changes = InstanceChanges()
        self._output = output = HookOutput(store)
        self._fleet = FleetServicer(
            store, bus, self._health, changes, self._sessions, certificates, output
        )
        self._gateway = AgentGatewayServicer(
            store,
            self._sessions,
            bus,
            self._health,
            changes,
            output,
        )

    def add_to_server(self, server: aio.Server) -> None:
        fleet_pb2_grpc.add_FleetServicer_to_server(self._fleet, server)
        agent_pb2_grpc.add_AgentGatewayServicer_to_server(self._gateway, server)

    async def start(self) -> None:
        await self._health.load()
        await self._bus.start()
        self._output.start()

    async def stop(self) -> None:
        self._changes.close()
        self._bus.close()
        self._output.close()
        self._gateway.close()
        await self._bus.stopped()
        await self._db.close()


async def create_fleet(config: ServerConfig) -> FleetService:
    db = await open_database(config.database_url_for("fleet"), "fleet")
    policy = DeadlinePolicy(
        ack_seconds=config.command_ack_timeout_seconds,
        grace_seconds=config.command_grace_seconds,
    )
    heartbeats = HeartbeatPolicy(
        config.heartbeat_interval_seconds, config.max_heartbeats_per_second
    )
    certificates = Certificates(
        config.authority_dir, timedelta(seconds=config.agent_certificate_seconds)
    )
    return FleetService(db, heartbeats, policy, certificates)
