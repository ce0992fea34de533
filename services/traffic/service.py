"""Assembles the traffic service: database and servicer."""

from __future__ import annotations

from grpc import aio

from deploy.v1 import traffic_pb2, traffic_pb2_grpc
from services.core.config import ServerConfig
from services.core.db import Database, open_database
from services.traffic.servicer import TrafficServicer
from services.traffic.store import TrafficStore


class TrafficService:
    grpc_names: tuple[str, ...] = (
        traffic_pb2.DESCRIPTOR.services_by_name["TrafficRouter"].full_name,
    )

    def __init__(self, db: Database) -> None:
        self._db = db
        self._servicer = TrafficServicer(TrafficStore(db))

    def add_to_server(self, server: aio.Server) -> None:
        traffic_pb2_grpc.add_TrafficRouterServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """No background work yet."""

    async def stop(self) -> None:
        await self._db.close()


async def create_traffic(config: ServerConfig) -> TrafficService:
    db = await open_database(config.database_url_for("traffic"), "traffic")
    return TrafficService(db)
