"""The same conformance cases through the real path, under the local cluster of `make cluster`
(services behind HAProxy): SDK → front door → services → a real deploy-agent over its stream
(one fresh agent, group and prefix per case)."""

from __future__ import annotations

import argparse
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.cli.applications import create_application
from deploy.cli.deployments import create_deployment, get_deployment_target
from deploy.cli.groups import create_deployment_group
from deploy.cli.revisions import push
from deploy.client import DeployClient
from deploy.v1 import common_pb2, registry_pb2
from tests.agents import start_agent, wait_online
from tests.conformance.runner import (
    Outcome,
    check,
    failure_text,
    place_existing,
    revisions,
    write_bundle,
)
from tests.conformance.test_conformance import CASES
from tests.harness import client_of, known_server
from tests.integration.test_local_cluster import localcluster
from tests.processes import free_port_range

# Local-only features: a custom event order and another appspec file name have no server API.
SERVER_CASES = [
    c for c in CASES if "events" not in c.get("options", {}) and "appspec_filename" not in c
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The cluster's front door (TLS, authentication); its own agents are the ones each case
    starts."""
    directory = tmp_path_factory.mktemp("conformance-cluster")
    base = free_port_range(100)
    up = localcluster("up", directory, base, agents=0)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        front = f"127.0.0.1:{base}"
        known_server(front, directory / "data")
        yield front
    finally:
        localcluster("down", directory, base, agents=0)


def _namespace(**values: Any) -> argparse.Namespace:
    defaults = dict(
        s3_location=None,
        github_location=None,
        revision=None,
        description=None,
        deployment_config_name=None,
        service_role_arn=None,
        file_exists_behavior=None,
        ignore_application_stop_failures=False,
    )
    return argparse.Namespace(**{**defaults, **values})


def run_with_agent(case: dict[str, Any], workdir: Path, front: str) -> Outcome:
    name = re.sub(r"[^a-z0-9-]", "", case["name"])[:60]
    record = workdir / "record"
    agent_home = workdir / name
    place_existing(agent_home / "prefix", case.get("existing", {}))
    agent = start_agent(  # registered, then enrolled with the registration's token
        workdir, front, name, {"case": name}, environment={"CONFORMANCE_RECORD": str(record)}
    )
    output, code = "", 0
    try:
        wait_online(front, [name])
        with client_of(front) as client:
            create_application(client, _namespace(application_name=name))
            create_deployment_group(
                client,
                _namespace(
                    application_name=name,
                    deployment_group_name="conformance",
                    on_premises_instance_tag_filters=[f"Key=case,Value={name},Type=KEY_AND_VALUE"],
                ),
            )
            for index, (appspec, tree) in enumerate(revisions(case)):
                bundle = write_bundle(
                    workdir / f"bundle-{index}", appspec, tree, "appspec.yml", case
                )
                digest = _push(client, name, bundle)
                created = create_deployment(
                    client,
                    _namespace(
                        application_name=name,
                        deployment_group_name="conformance",
                        registry_location=f"digest={digest},bundleType=zip",
                        file_exists_behavior=case.get("options", {}).get("file_exists_behavior"),
                    ),
                )
                assert created is not None
                deployment_id = created["deploymentId"]
                for _ in client.watch_deployment(deployment_id, timeout=60):
                    pass
                target = get_deployment_target(
                    client, argparse.Namespace(deployment_id=deployment_id, target_id=name)
                )
                assert target is not None
                events = target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
                output += "".join(  # a success's tail holds the appspec's warnings
                    e["diagnostics"]["logTail"]
                    for e in events
                    if e["status"] == "Succeeded" and e.get("diagnostics", {}).get("logTail")
                )
                failed = [e for e in events if e["status"] == "Failed"]
                if failed:
                    d = failed[0]["diagnostics"]
                    output += failure_text(
                        failed[0]["lifecycleEventName"], d["errorCode"], d["message"], d["logTail"]
                    )
                    code = 1
                    break
    finally:
        agent.stop_app()
        if agent.process:
            agent.process.stop()
    hooks = record.read_text().splitlines() if record.exists() else []
    return Outcome(code, output, agent.prefix, hooks)


def _push(client: DeployClient, application: str, bundle: Path) -> str:
    """`deploy push` of a directory; an archive the case built is uploaded as it is."""
    if bundle.is_dir():
        pushed = push(client, _namespace(application_name=application, source=str(bundle)))
        assert pushed is not None
        return str(pushed["revision"]["registryLocation"]["digest"])
    digest = f"sha256:{hashlib.sha256(bundle.read_bytes()).hexdigest()}"
    uploaded = client.upload_bundle(bundle, digest)
    client.call(
        client.registry.RegisterApplicationRevision,
        registry_pb2.RegisterApplicationRevisionRequest(
            application_name=application,
            revision=common_pb2.RevisionLocation(
                revision_type=common_pb2.REVISION_TYPE_REGISTRY,
                registry_location=uploaded.location,
            ),
        ),
    )
    return digest


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c["name"] for c in SERVER_CASES])
def test_conformance_through_a_real_agent(
    case: dict[str, Any], tmp_path: Path, server: str
) -> None:
    outcome = run_with_agent(case, tmp_path, server)
    check(case, outcome, app=_app(case))


def _app(case: dict[str, Any]) -> str:
    return re.sub(r"[^a-z0-9-]", "", case["name"])[:60]
