"""The composition root: the services `deploy-server` can run, by name, and the wiring that
needs more than one of them — the gate that checks every call uses the identity service's
keys and the orchestrator's deployments when they run in the same process, and their peers'
otherwise. The bootstrap (services.core.server) knows no service by name."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from services.core.access import Authority, Gate
from services.core.authority import RemoteAuthority
from services.core.config import ServerConfig
from services.core.peers import peer_channel
from services.core.pki import service_identity
from services.core.server import Service, ServiceFactory
from services.fleet.service import create_fleet
from services.identity.service import IdentityService, create_identity
from services.orchestrator.service import OrchestratorService, create_orchestrator
from services.registry.service import create_registry
from services.traffic.service import create_traffic


class OpenDeploy:
    """All five services (`deploy-server --services` picks which of them a process runs)."""

    factories: Mapping[str, ServiceFactory] = {
        "registry": create_registry,
        "fleet": create_fleet,
        "orchestrator": create_orchestrator,
        "traffic": create_traffic,
        "identity": create_identity,
    }

    async def gate(self, config: ServerConfig, services: Mapping[str, Service]) -> Gate:
        """Authentication and authorization: keys are checked by the identity service (here,
        or its peer), service certificates against the cluster's authority; calls naming a
        deployment are authorized against its group where the orchestrator runs here."""
        identity = await asyncio.to_thread(
            service_identity, config.authority_dir, tuple(config.services)
        )
        local = services.get("identity")
        authority: Authority = (
            local.store
            if isinstance(local, IdentityService)
            else RemoteAuthority(peer_channel(config, "identity"))
        )
        orchestrator = services.get("orchestrator")
        locate = (
            orchestrator.locate_deployment
            if isinstance(orchestrator, OrchestratorService)
            else None
        )
        return Gate(authority, identity.authority, locate)
