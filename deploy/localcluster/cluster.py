"""The local cluster of DESIGN §3: its services, agents, HAProxy and Prometheus started and
stopped (`up`, `down`), and replacement agents for blue/green (`provision`)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request
from functools import partial
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.client import DeployClient
from deploy.credentials import Credentials, load_credentials
from deploy.errors import ClientError
from deploy.localcluster import prometheus
from deploy.localcluster.haproxy import WEB_BACKEND, find_or_install_haproxy, render_config
from deploy.localcluster.layout import SERVICES, ClusterLayout
from deploy.localcluster.processes import spawn, stop_pid_file, wait_for
from deploy.private import write_private
from deploy.v1 import common_pb2, fleet_pb2, traffic_pb2

BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
REPO = Path(__file__).resolve().parents[2]


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _serving(layout: ClusterLayout, address: str) -> bool:
    """The server at `address` answers its health check over TLS."""
    if not layout.ca_file.exists():
        return False  # the first service to start creates the authority
    credentials = grpc.ssl_channel_credentials(layout.ca_file.read_bytes())
    with grpc.secure_channel(address, credentials) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


PROVISIONER = "local"
"""The cluster's provisioner: blue/green replacement fleets are new local agents."""


def _server_env(layout: ClusterLayout, prometheus_url: str, peers: bool = True) -> dict[str, str]:
    env = {
        "OPENDEPLOY_DATA_DIR": str(layout.data),
        "OPENDEPLOY_PROVISIONERS": json.dumps({PROVISIONER: {"command": _provisioner(layout)}}),
        "OPENDEPLOY_LOAD_BALANCERS": json.dumps(
            {LOAD_BALANCER: {"haproxy": {"admin_socket": str(layout.directory / "haproxy.sock")}}}
        ),
        # Webhooks to this machine's own servers (a local cluster's receivers) are allowed.
        "OPENDEPLOY_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
    }  # TLS and authentication are on, as by default: the authority is in the data directory
    if prometheus_url:  # its alerting rules are the alarms deployment groups may name
        env["OPENDEPLOY_PROMETHEUS_URL"] = prometheus_url
    if peers:
        env |= {
            f"OPENDEPLOY_PEER_{s.upper()}": f"127.0.0.1:{layout.service_port(s)}" for s in SERVICES
        }
    return env


def _provisioner(layout: ClusterLayout) -> str:
    return shlex.join(
        [
            sys.executable,
            "-m",
            "deploy.localcluster",
            "provision",
            "--dir",
            str(layout.directory),
            "--port-base",
            str(layout.port_base),
        ]
    )


def start_services(layout: ClusterLayout, prometheus_url: str) -> bool:
    """Each service as its own process behind HAProxy; or all in one when HAProxy is missing.
    Returns whether HAProxy runs."""
    haproxy = find_or_install_haproxy(say)
    server = str(BIN / "deploy-server")
    if haproxy is None:
        say(
            "HAProxy is not available and cannot be installed here: running the services "
            f"in one deploy-server on {layout.endpoint}, without the web frontend"
        )
        spawn(
            layout.pids,
            layout.logs,
            "deploy-server",
            [
                server,
                "--listen",
                layout.endpoint,
                "--metrics-listen",
                f"127.0.0.1:{layout.embedded_metrics_port}",
            ],
            env=_server_env(layout, prometheus_url, peers=False),
        )
        wait_for(lambda: _serving(layout, layout.endpoint), START_TIMEOUT, "deploy-server")
        return False
    for service in SERVICES:
        address = f"127.0.0.1:{layout.service_port(service)}"
        spawn(
            layout.pids,
            layout.logs,
            service,
            [
                server,
                "--services",
                service,
                "--listen",
                address,
                "--metrics-listen",
                f"127.0.0.1:{layout.metrics_port(service)}",
            ],
            env=_server_env(layout, prometheus_url),
        )
    for service in SERVICES:
        address = f"127.0.0.1:{layout.service_port(service)}"
        wait_for(partial(_serving, layout, address), START_TIMEOUT, f"{service} on {address}")
    issue = [server, "--data-dir", str(layout.data), "issue-certificate"]
    subprocess.run(
        [*issue, "--address", layout.endpoint, "--out", str(layout.front_certificate)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    config = layout.directory / "haproxy.cfg"
    config.write_text(render_config(layout))
    spawn(layout.pids, layout.logs, "haproxy-launcher", [haproxy, "-f", str(config), "-D"])
    wait_for(
        lambda: (layout.pids / "haproxy.pid").exists() and _serving(layout, layout.endpoint),
        START_TIMEOUT,
        f"HAProxy front door on {layout.endpoint}",
    )
    (layout.pids / "haproxy-launcher.pid").unlink(missing_ok=True)
    say(f"services behind HAProxy on {layout.endpoint}; web frontend on {layout.web_url}")
    return True


def start_prometheus(layout: ClusterLayout, binary: str, with_haproxy: bool) -> None:
    config = prometheus.prepare(layout, with_haproxy)
    spawn(layout.pids, layout.logs, "prometheus", prometheus.command(binary, layout, config))
    wait_for(
        lambda: answers(f"{layout.prometheus_url}/-/ready", "Ready"), START_TIMEOUT, "Prometheus"
    )
    say(f"Prometheus on {layout.prometheus_url}/ (alerting rules: monitoring/rules and "
        f"{layout.rules_dir}; reload with make cluster or SIGHUP)")  # fmt: skip


def spawn_agent(layout: ClusterLayout, index: int, tags: dict[str, str], join_token: str) -> str:
    """Start agent-<index> with its own root, install prefix and APP_PORT; it enrols with
    `join_token` on its first start (and is registered then, with the token's tags, when the
    token is not a registration's)."""
    name = layout.agent_name(index)
    home = layout.agent_home(index)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": layout.endpoint,
                "instance_name": name,
                "tags": {**tags, "name": name},
                "root_dir": str(home / "root"),
                "install_prefix": str(home / "prefix"),
                "environment": {"APP_PORT": str(layout.app_port(index)), "INSTANCE": name},
                "join_token": join_token,
                "ca_file": str(layout.ca_file),
                "metrics_listen": f"127.0.0.1:{layout.agent_metrics_port(index)}",
            }
        )
    )
    config.chmod(0o600)  # it holds a join token until the agent has spent it
    respawn_agent(layout, index)
    return name


def admin_client(layout: ClusterLayout) -> DeployClient:
    """A client acting as the cluster's administrator."""
    return DeployClient(layout.endpoint, str(layout.ca_file), _administrator(layout))


def _administrator(layout: ClusterLayout) -> Credentials:
    found = load_credentials(
        None, {"DEPLOY_SHARED_CREDENTIALS_FILE": str(layout.admin_credentials)}
    )
    if found is None:
        raise ClientError(f"no administrator key in {layout.admin_credentials}")
    return found


def respawn_agent(layout: ClusterLayout, index: int) -> None:
    """Start agent-<index> from the configuration it was first started with."""
    name = layout.agent_name(index)
    config = layout.agent_home(index) / "agent.yaml"
    spawn(layout.pids, layout.logs, name, [str(BIN / "deploy-agent"), "--config", str(config)])
    prometheus.write_agent_targets(layout)  # scraped from now on


def start_agents(layout: ClusterLayout) -> list[int]:
    """Bring back every agent of the cluster that is still registered (those a blue/green
    deployment provisioned included; retired ones stay stopped), then start new ones until
    AGENTS run. Returns the indices of the new ones."""
    with admin_client(layout) as client:
        registered = {i.instance_name for i in client.instances()}
        kept = [i for i in layout.agent_indices() if layout.agent_name(i) in registered]
        for index in kept:
            respawn_agent(layout, index)
        first = max(layout.agent_indices(), default=0) + 1
        new = list(range(first, first + max(layout.agents - len(kept), 0)))
        for index in new:
            name = layout.agent_name(index)
            registration = client.call(
                client.fleet.RegisterOnPremisesInstance,
                fleet_pb2.RegisterOnPremisesInstanceRequest(
                    instance_name=name,
                    tags=[
                        common_pb2.Tag(key="cluster", value="local"),
                        common_pb2.Tag(key="name", value=name),
                    ],
                ),
            )
            spawn_agent(layout, index, {"cluster": "local"}, registration.join_token)
        names = [layout.agent_name(i) for i in kept + new]

        def all_online() -> bool:
            online = {
                i.instance_name
                for i in client.instances()
                if i.health == fleet_pb2.INSTANCE_HEALTH_ONLINE
            }
            return set(names) <= online

        wait_for(all_online, START_TIMEOUT, f"{len(names)} agents online")
    say(
        f"{len(names)} agents online: "
        + ", ".join(
            f"{layout.agent_name(i)} (APP_PORT {layout.app_port(i)})" for i in sorted(kept + new)
        )
    )
    return new


WEB_DRAIN_SECONDS = 10
"""The longest BlockTraffic waits for a local app's open requests."""
LOAD_BALANCER = "local-haproxy"
"""The cluster's HAProxy, as the traffic service's configuration names it."""


def create_web_target_group(
    layout: ClusterLayout, with_haproxy: bool, new_agents: list[int]
) -> None:
    """The target group `local-web`: HAProxy's web backend (or, without HAProxy, a record of
    weights only), where each agent's app is reached at its own APP_PORT."""
    with admin_client(layout) as client:
        existing = client.call(
            client.traffic.ListTargetGroups, traffic_pb2.ListTargetGroupsRequest()
        ).target_groups
        if WEB_BACKEND not in existing:
            client.call(
                client.traffic.CreateTargetGroup,
                traffic_pb2.CreateTargetGroupRequest(
                    name=WEB_BACKEND,
                    provider=(
                        traffic_pb2.LOAD_BALANCER_PROVIDER_HAPROXY
                        if with_haproxy
                        else traffic_pb2.LOAD_BALANCER_PROVIDER_NONE
                    ),
                    port=80,
                    deregistration_delay_seconds=WEB_DRAIN_SECONDS,
                    load_balancer=LOAD_BALANCER if with_haproxy else "",
                    haproxy=traffic_pb2.HAProxyTargetGroup(backend=WEB_BACKEND),
                ),
            )
        for index in new_agents:
            _set_web_address(client, layout, index)
    say(f"target group {WEB_BACKEND}: each agent's app joins it when a deployment allows traffic")


def _set_web_address(client: DeployClient, layout: ClusterLayout, index: int) -> None:
    client.call(
        client.traffic.SetTargetAddress,
        traffic_pb2.SetTargetAddressRequest(
            target_group_name=WEB_BACKEND,
            instance_name=layout.agent_name(index),
            address=f"127.0.0.1:{layout.app_port(index)}",
        ),
    )


def provision(layout: ClusterLayout) -> None:
    """The cluster's provisioner (run by the orchestrator, told what to do in OPENDEPLOY_*):
    `provision` starts OPENDEPLOY_COUNT new agents with OPENDEPLOY_TAGS; `terminate` stops
    the agents named in OPENDEPLOY_INSTANCES and the apps their hooks started."""
    action = os.environ.get("OPENDEPLOY_ACTION", "")
    if action == "provision":
        count = int(os.environ.get("OPENDEPLOY_COUNT", "0"))
        tags = dict(
            pair.split("=", 1) for pair in os.environ.get("OPENDEPLOY_TAGS", "").split(",") if pair
        )
        first = max(layout.agent_indices(), default=0) + 1
        with admin_client(layout) as client:
            token = client.call(
                client.fleet.CreateJoinToken,
                fleet_pb2.CreateJoinTokenRequest(
                    tags=[common_pb2.Tag(key=k, value=v) for k, v in tags.items()],
                    max_uses=count,
                    expires_in_seconds=600,
                ),
            ).join_token
            for index in range(first, first + count):
                _set_web_address(client, layout, index)
                spawn_agent(layout, index, tags, token)
                print(f"started {layout.agent_name(index)} (APP_PORT {layout.app_port(index)})")
    elif action == "terminate":
        for name in os.environ.get("OPENDEPLOY_INSTANCES", "").split():
            stop_pid_file(layout.pids / f"{name}.pid")
            for pid_file in (layout.directory / "agents" / name).glob(
                "prefix/var/lib/*/server.pid"
            ):
                stop_pid_file(pid_file, timeout=5)
            print(f"stopped {name}")
    else:
        raise ClientError(f"OPENDEPLOY_ACTION must be provision or terminate, not {action!r}")


def up(layout: ClusterLayout) -> None:
    if any(layout.pids.glob("*.pid")):
        reloaded = prometheus.reload(layout)
        say(
            f"a cluster is already running in {layout.directory}"
            + ("; Prometheus read its rules again" if reloaded else "")
            + f" (make down CLUSTER_DIR={layout.directory} stops it)"
        )
        return
    layout.directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # logs, data, agents' roots
    layout.directory.chmod(0o700)
    say(f"starting a local cluster in {layout.directory} (ports from {layout.port_base})")
    monitor = prometheus.find_or_install_prometheus(say)
    if monitor is None:
        say("Prometheus is not available and cannot be installed here: no monitoring, no alarms")
    prometheus_url = layout.prometheus_url if monitor else ""
    with_haproxy = start_services(layout, prometheus_url)
    wait_for(layout.admin_credentials.exists, START_TIMEOUT, "the administrator key")
    if monitor is not None:
        start_prometheus(layout, monitor, with_haproxy)
    create_web_target_group(layout, with_haproxy, start_agents(layout))
    admin = _administrator(layout)
    write_private(
        layout.env_file,
        (
            f"export DEPLOY_ENDPOINT={layout.endpoint}\n"
            + f"export DEPLOY_CA_FILE={layout.ca_file}\n"
            + (f"export WEB_URL={layout.web_url}\n" if with_haproxy else "")
            + (f"export PROMETHEUS_URL={prometheus_url}\n" if prometheus_url else "")
            + f"export DEPLOY_ACCESS_KEY_ID={admin.access_key_id}\n"
            + f"export DEPLOY_SECRET_ACCESS_KEY={admin.secret_access_key}\n"
        ).encode(),
    )
    say(f"ready: source {layout.env_file} (the administrator's access key is in it)")


def down(layout: ClusterLayout) -> None:
    """Stop exactly what this cluster started: agents first, then the apps their hooks
    started, then HAProxy, Prometheus and the services."""
    if not layout.pids.exists():
        say(f"nothing running in {layout.directory}")
        return
    order = sorted(layout.pids.glob("agent-*.pid"))
    for pid_file in order:
        stop_pid_file(pid_file)
    for pid_file in layout.directory.glob("agents/*/prefix/var/lib/*/server.pid"):
        stop_pid_file(pid_file, timeout=5)
    for pid_file in sorted(layout.pids.glob("*.pid")):
        stop_pid_file(pid_file)
    say(f"stopped the cluster in {layout.directory}")


def page(url: str) -> str:
    return str(urllib.request.urlopen(url, timeout=2).read().decode())


def answers(url: str, want: str) -> bool:
    try:
        return want in page(url)
    except OSError:
        return False
