"""Provisioners: how a blue/green deployment gets a replacement fleet and retires the original
one on servers OpenDeploy does not create itself — the on-premises counterpart of CodeDeploy
copying an Auto Scaling group.

A provisioner is named in the server's configuration (never in an API request: it runs with the
server's rights) and is either a command, run with `sh -c` and told what to do through
environment variables, or a webhook that receives the same facts as JSON:

    OPENDEPLOY_ACTION         provision | terminate
    OPENDEPLOY_COUNT          provision: how many instances to start
    OPENDEPLOY_TAGS           provision: tags to register them with, "k=v,k=v"
    OPENDEPLOY_INSTANCES      terminate: the instance names, space-separated
    OPENDEPLOY_DEPLOYMENT_ID, OPENDEPLOY_APPLICATION_NAME, OPENDEPLOY_DEPLOYMENT_GROUP_NAME

Provisioned instances register themselves (their agents' hello, or register-on-premises-instance)
with the tags given; the deployment waits for them to come online.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from services.core.errors import FailedPrecondition, InvalidArgument
from services.core.outbound import OutboundPolicy, OutboundRefused, post_json
from services.core.tags import Tag
from services.core.urls import redact_url

log = logging.getLogger(__name__)

RUN_TIMEOUT_SECONDS = 300.0
OUTPUT_TAIL = 2048


@dataclass(frozen=True)
class Provisioner:
    name: str
    command: str = ""
    url: str = ""


@dataclass(frozen=True)
class ProvisionRequest:
    deployment_id: str
    application_name: str
    group_name: str


class Provisioners:
    def __init__(
        self, configured: Mapping[str, Provisioner], policy: OutboundPolicy | None = None
    ) -> None:
        self._configured = dict(configured)
        self._policy = policy or OutboundPolicy()

    def require(self, field: str, name: str) -> None:
        """InvalidArgument naming `field` unless `name` is configured on this server."""
        if name and name not in self._configured:
            known = ", ".join(sorted(self._configured)) or "none are configured"
            raise InvalidArgument(f"{field} {name!r} is not a provisioner of this server ({known})")

    async def provision(
        self, name: str, request: ProvisionRequest, count: int, tags: Sequence[Tag]
    ) -> None:
        await self._run(
            name,
            request,
            {
                "action": "provision",
                "count": count,
                "tags": {t.key: t.value for t in tags},
            },
        )

    async def terminate(
        self, name: str, request: ProvisionRequest, instances: Sequence[str]
    ) -> None:
        await self._run(name, request, {"action": "terminate", "instances": list(instances)})

    async def _run(self, name: str, request: ProvisionRequest, facts: dict[str, object]) -> None:
        provisioner = self._configured.get(name)
        if provisioner is None:
            raise FailedPrecondition(f"provisioner {name!r} is not configured on this server")
        facts = {
            **facts,
            "deploymentId": request.deployment_id,
            "applicationName": request.application_name,
            "deploymentGroupName": request.group_name,
        }
        log.info(
            "provisioner called",
            extra={
                "fields": {
                    "provisioner": name,
                    "action": facts["action"],
                    "deployment_id": request.deployment_id,
                }
            },
        )
        if provisioner.command:
            await _run_command(provisioner, facts)
        else:
            await _post(provisioner, facts, self._policy)


def _environment(facts: Mapping[str, object]) -> dict[str, str]:
    tags = facts.get("tags", {})
    assert isinstance(tags, dict)
    instances = facts.get("instances", [])
    assert isinstance(instances, list)
    return {
        "OPENDEPLOY_ACTION": str(facts["action"]),
        "OPENDEPLOY_COUNT": str(facts.get("count", 0)),
        "OPENDEPLOY_TAGS": ",".join(f"{k}={v}" for k, v in tags.items()),
        "OPENDEPLOY_INSTANCES": " ".join(str(i) for i in instances),
        "OPENDEPLOY_DEPLOYMENT_ID": str(facts["deploymentId"]),
        "OPENDEPLOY_APPLICATION_NAME": str(facts["applicationName"]),
        "OPENDEPLOY_DEPLOYMENT_GROUP_NAME": str(facts["deploymentGroupName"]),
    }


async def _run_command(provisioner: Provisioner, facts: Mapping[str, object]) -> None:
    process = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        provisioner.command,
        env={**os.environ, **_environment(facts)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise FailedPrecondition(
            f"provisioner {provisioner.name!r} did not finish {facts['action']} within "
            f"{RUN_TIMEOUT_SECONDS:.0f}s"
        ) from None
    if process.returncode != 0:
        tail = output.decode(errors="replace")[-OUTPUT_TAIL:].strip()
        raise FailedPrecondition(
            f"provisioner {provisioner.name!r} {facts['action']} exited {process.returncode}: "
            f"{tail}"
        )


async def _post(
    provisioner: Provisioner, facts: Mapping[str, object], policy: OutboundPolicy
) -> None:
    where = f"provisioner {provisioner.name!r} {facts['action']} at {redact_url(provisioner.url)}"
    try:
        status = await post_json(
            provisioner.url,
            json.dumps(facts).encode(),
            policy,
            RUN_TIMEOUT_SECONDS,
            "opendeploy-provisioner/1",
        )
    except OutboundRefused as error:
        raise FailedPrecondition(f"{where}: {error}") from None
    except httpx.HTTPError as error:
        raise FailedPrecondition(f"{where}: {type(error).__name__}") from None
    if not 200 <= status < 300:
        raise FailedPrecondition(f"{where}: HTTP {status}")
