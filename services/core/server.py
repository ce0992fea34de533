"""gRPC server bootstrap: the chosen services, health, reflection, metrics, clean SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from deploy.metricsserver import serve_metrics
from deploy.private import private_dir
from services.core.access import Gate
from services.core.config import ServerConfig
from services.core.interceptor import ReflectionGuard, ServiceInterceptor
from services.core.peers import CHANNEL_OPTIONS
from services.core.pki import server_tls

log = logging.getLogger(__name__)

CALLS_GRACE_FRACTION = 0.5
"""Of the shutdown grace, the part calls in flight get to finish before they are cancelled."""


class Service(Protocol):
    """What the bootstrap needs of a service: its gRPC names, how to mount it, start and stop it."""

    grpc_names: tuple[str, ...]

    def add_to_server(self, server: aio.Server) -> None: ...

    async def start(self) -> None:
        """Start background work (control loops, subscriptions) once the server is listening."""

    async def stop(self) -> None:
        """Stop background work and close the database."""


ServiceFactory = Callable[[ServerConfig], Awaitable[Service]]


class Composition(Protocol):
    """Which services a process can run and how they are put together (services.composition:
    the bootstrap knows no service by name)."""

    factories: Mapping[str, ServiceFactory]

    async def gate(self, config: ServerConfig, services: Mapping[str, Service]) -> Gate:
        """The calls' authentication and authorization, given the services running here."""


def server_options(config: ServerConfig) -> list[tuple[str, int]]:
    """The peers' channel options plus the bounds on what one client may send or hold open
    (answers are bounded by the list page sizes instead)."""
    bounded = {
        "grpc.max_receive_message_length": config.grpc_max_message_bytes,
        "grpc.max_concurrent_streams": config.grpc_max_concurrent_streams,
    }
    return [(k, v) for k, v in CHANNEL_OPTIONS if k not in bounded] + list(bounded.items())


async def serve(
    config: ServerConfig, composition: Composition, stop: asyncio.Event | None = None
) -> bool:
    """Run the configured services of `composition` until SIGTERM/SIGINT (or `stop` is set).
    Returns False when stopping took longer than the configured grace (work left behind is
    resumed by the next process that loads it)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    private_dir(config.data_dir)
    tls = (
        await asyncio.to_thread(server_tls, config.authority_dir, config.listen)
        if config.tls
        else None
    )
    by_name = {name: await composition.factories[name](config) for name in config.services}
    services = list(by_name.values())
    gate = await composition.gate(config, by_name) if config.auth else None
    server = aio.server(
        interceptors=[
            ReflectionGuard(config.reflection_from_anywhere),
            ServiceInterceptor(gate),
        ],
        options=server_options(config),
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names: list[str] = []
    for service in services:
        service.add_to_server(server)
        names.extend(service.grpc_names)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    if tls is None:
        server.add_insecure_port(config.listen)
    else:
        credentials = grpc.ssl_server_credentials([(tls.key, tls.certificate)])
        server.add_secure_port(config.listen, credentials)
    await server.start()
    for service in services:
        await service.start()
    for name in ["", *names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    serve_metrics(config.metrics_listen)
    fields = {"listen": config.listen, "services": list(config.services)}
    if tls is not None:
        fields["tls_ca_file"] = str(tls.ca_path)  # what clients trust (DEPLOY_CA_FILE)
    log.info("deploy-server serving", extra={"fields": fields})
    if not config.tls:
        log.warning("tls is off: calls and agent streams travel in plaintext")
    if not config.auth:
        log.warning(
            "auth is off: anyone who reaches this port may call every RPC and connect as any agent"
        )
    await stop.wait()
    grace = float(config.shutdown_grace_seconds)
    log.info("deploy-server stopping", extra={"fields": {"grace_seconds": grace}})
    await health.enter_graceful_shutdown()
    stopping = asyncio.ensure_future(_shut_down(server, services, grace * CALLS_GRACE_FRACTION))
    done, _ = await asyncio.wait({stopping}, timeout=grace)
    if not done:
        log.warning("shutdown grace passed; exiting with work left for the next start")
        return False
    return True


async def _shut_down(server: aio.Server, services: list[Service], calls_grace: float) -> None:
    # Refuse new calls first, so that peers whose watch streams end below do not reconnect
    # into the grace period; calls in flight keep their database connections meanwhile.
    stopping = asyncio.ensure_future(server.stop(calls_grace))
    await asyncio.sleep(0)
    for service in services:
        await service.stop()
    await stopping
