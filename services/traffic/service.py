"""Assembles the traffic service: database, router and servicer; restores load balancers."""

from __future__ import annotations

import asyncio
import contextlib

from grpc import aio

from deploy.v1 import traffic_pb2, traffic_pb2_grpc
from services.core.config import ServerConfig
from services.core.db import Database, open_database
from services.traffic.balancers import LoadBalancers, configured_load_balancers
from services.traffic.router import TrafficRouter
from services.traffic.servicer import TrafficServicer
from services.traffic.store import TrafficStore
from services.traffic.watch import HAProxyWatch


class TrafficService:
    grpc_names: tuple[str, ...] = (
        traffic_pb2.DESCRIPTOR.services_by_name["TrafficRouter"].full_name,
    )

    def __init__(self, db: Database, balancers: LoadBalancers) -> None:
        self._db = db
        store = TrafficStore(db)
        self._router = TrafficRouter(store, balancers.for_group)
        self._servicer = TrafficServicer(store, self._router, balancers)
        self._watch = HAProxyWatch(balancers.haproxy_sockets(), self._router.restore)
        self._tasks: list[asyncio.Task[None]] = []

    def add_to_server(self, server: aio.Server) -> None:
        traffic_pb2_grpc.add_TrafficRouterServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """Put back, in the background, what the load balancers should be doing — now, and
        whenever an HAProxy restarts."""
        self._tasks = [
            asyncio.create_task(self._router.restore()),
            asyncio.create_task(self._watch.run()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._db.close()


async def create_traffic(config: ServerConfig) -> TrafficService:
    db = await open_database(config.database_url_for("traffic"), "traffic")
    return TrafficService(db, configured_load_balancers(config.load_balancers))
