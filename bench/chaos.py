"""Fault injection (`make chaos`): deployments keep flowing while processes are killed.

A cluster of real processes on 127.0.0.1 — the fleet (with the registry), the orchestrator
(with the traffic service), HAProxy and AGENTS agents, each host with a web app HAProxy checks —
runs a stream of deployments of four applications to the same hosts (OneAtATime, HalfAtATime,
AllAtOnce; a quarter of the revisions fail ValidateService; some deployments are stopped; one
application rolls back on failure; one takes its hosts out of HAProxy and back in place; one
switches blue/green to two more hosts through HAProxy's weights, keeping the originals).
Meanwhile a random service, agent or HAProxy is killed with SIGKILL at random moments and
started again.
After `--kills` kills the stream stops, every deployment is given time to end, and the
invariants are checked and printed:

- every deployment reached a terminal state;
- no lifecycle event ran twice on a host (hooks journal each run);
- targets, overviews and events agree, and every event a hook journalled is recorded as run;
- the minimum-healthy rule never broke (targets out of service at once, from event times);
- no acknowledged deployment was lost.

Exit status 1 when an invariant is broken. Not a test by itself: tests/integration/test_chaos.py
runs a short one (20 kills) in `make test`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from bench.access import Admin, serving
from bench.cluster import BIN, free_port, wait
from deploy.bundle import make_zip
from deploy.client import TERMINAL, DeployClient
from deploy.errors import ApiError
from deploy.lifecycle import ALLOW_TRAFFIC_EVENTS, IN_PLACE_EVENTS, TRAITS, LifecycleEvent
from deploy.v1 import common_pb2, orchestrator_pb2, registry_pb2, traffic_pb2

APPLICATIONS = ("chaos-a", "chaos-b", "chaos-lb", "chaos-bg")
"""Four applications whose groups hold the same hosts (their events queue on each agent)."""
BEHIND_HAPROXY = "chaos-lb"
"""The application whose deployments block and allow traffic through HAProxy."""
BLUE_GREEN = "chaos-bg"
"""The application deployed blue/green: its replacement fleet is the GREEN_HOSTS."""
GREEN_HOSTS = 2
TARGET_GROUP = "chaos-web"
LOAD_BALANCER = "chaos-haproxy"
CONFIGS = (
    "CodeDeployDefault.OneAtATime",
    "CodeDeployDefault.HalfAtATime",
    "CodeDeployDefault.AllAtOnce",
)
MOST_OUT_OF_SERVICE: dict[str, Callable[[int], int]] = {
    "CodeDeployDefault.OneAtATime": lambda n: 1,
    "CodeDeployDefault.HalfAtATime": lambda n: n - n // 2,
    "CodeDeployDefault.AllAtOnce": lambda n: n,
}
"""Targets one deployment may have out of service at once: N minus its minimum healthy hosts."""
HOOKS = tuple(e for e in IN_PLACE_EVENTS if TRAITS[e].scripts)
STOP_CHANCE = 0.02
"""Of each look at a running deployment (two a second), the chance it is stopped."""
SETTLE_SECONDS = 240
"""How long the deployments get to end once the kills stop."""


@dataclass
class Node:
    """One process of the cluster, started again after each kill with the same arguments."""

    name: str
    args: list[str]
    log: Path
    address: str = ""
    """host:port a service serves on (empty for an agent)."""
    ca_file: Path = Path()
    """The authority its TLS certificate chains to (a service's)."""
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as handle:
            self.popen = subprocess.Popen(
                self.args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        if self.address:
            wait(lambda: serving(self.address, self.ca_file), 60, self.name)

    def kill(self) -> None:
        """SIGKILL the process and everything it started (an agent's running hooks too), as
        a crashed host would end."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Health checks hang up early; that is no error worth a traceback."""


class WebApp:
    """A host's web app (always up: what HAProxy's health check finds when it is let in)."""

    def __init__(self, name: str) -> None:
        body = name.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Cluster:
    workdir: Path
    agents: int
    database_url: str
    fleet: Node = field(init=False)
    orchestrator: Node = field(init=False)
    haproxy: Node = field(init=False)
    admin: Admin = field(init=False)
    hosts: list[Node] = field(default_factory=list)
    apps: dict[str, WebApp] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fleet_address, address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        self.admin = Admin(self.workdir / "pki", self.workdir / "orchestrator")
        self.haproxy = self._haproxy()
        self.fleet = self._server(
            "fleet", fleet_address, "fleet,registry", {"OPENDEPLOY_PEER_IDENTITY": address}
        )
        balancers = {LOAD_BALANCER: {"haproxy": {"admin_socket": str(self.admin_socket)}}}
        self.orchestrator = self._server(
            "orchestrator",
            address,
            "orchestrator,traffic,identity",
            {
                "OPENDEPLOY_PEER_FLEET": fleet_address,
                "OPENDEPLOY_PEER_REGISTRY": fleet_address,
                "OPENDEPLOY_LOAD_BALANCERS": json.dumps(balancers),
            },
        )
        for index in range(1, self.agents + GREEN_HOSTS + 1):
            name = f"chaos-{index}"
            fleet = "chaos" if index <= self.agents else "chaos-green"
            self.hosts.append(self._agent(name, fleet_address, fleet))
            self.apps[name] = WebApp(name)

    @property
    def admin_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    def _haproxy(self) -> Node:
        """HAProxy in the foreground (-db), so that a kill is the process's own; its backend
        starts empty and the traffic service fills it."""
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            "\n".join(
                [
                    "global",
                    f"    stats socket {self.admin_socket} mode 600 level admin",
                    "defaults",
                    "    mode http",
                    "    timeout connect 2s",
                    "    timeout client 30s",
                    "    timeout server 30s",
                    "frontend web",
                    f"    bind 127.0.0.1:{free_port()}",
                    "    default_backend web",
                    "backend web",
                    "    balance roundrobin",
                    "    option httpchk GET /",
                    "",
                ]
            )
        )
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        return Node("haproxy", [binary, "-db", "-f", str(config)], self.workdir / "haproxy.log")

    def _server(self, name: str, address: str, services: str, env: dict[str, str]) -> Node:
        data = self.workdir / name
        args = [
            "env",
            "PYTHONFAULTHANDLER=1",
            *(f"{k}={v}" for k, v in env.items()),
            str(BIN / "deploy-server"),
            "--services",
            services,
            "--listen",
            address,
            "--metrics-listen",
            f"127.0.0.1:{free_port()}",
            "--data-dir",
            str(data),
            "--pki-dir",
            str(self.admin.pki_dir),
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        data.mkdir(parents=True, exist_ok=True)
        return Node(name, args, self.workdir / f"{name}.log", address, self.admin.ca_file)

    def _agent(self, name: str, fleet_address: str, fleet: str) -> Node:
        home = self.workdir / name
        home.mkdir(parents=True)
        config = home / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "server": fleet_address,
                    "ca_file": str(self.admin.ca_file),
                    "instance_name": name,
                    "tags": {"cluster": fleet},
                    "root_dir": str(home / "root"),
                    "install_prefix": str(home / "prefix"),
                    "environment": {"JOURNAL": str(self.journal(name)), "INSTANCE": name},
                }
            )
        )
        args = [str(BIN / "deploy-agent"), "--config", str(config)]
        return Node(name, args, home / "agent.log")

    def journal(self, host: str) -> Path:
        """Where the hooks on `host` write a line per run."""
        return self.workdir / f"{host}.journal"

    @property
    def nodes(self) -> list[Node]:
        return [self.haproxy, self.fleet, self.orchestrator, *self.hosts]

    def start(self) -> None:
        """HAProxy and the services, then the agents, enrolling with a token per fleet."""
        for node in (self.haproxy, self.fleet, self.orchestrator):
            node.start()
            if node is self.haproxy:
                wait(self.admin_socket.exists, 30, "HAProxy's admin socket")
        self.admin.wait_for_key(wait)
        tokens = {
            fleet: self.admin.join_token(self.fleet.address, {"cluster": fleet}, uses)
            for fleet, uses in (("chaos", self.agents), ("chaos-green", GREEN_HOSTS))
        }
        for host in self.hosts:
            config = Path(host.args[-1])
            settings = yaml.safe_load(config.read_text())
            config.write_text(
                yaml.safe_dump({**settings, "join_token": tokens[settings["tags"]["cluster"]]})
            )
            host.start()

    def restart(self, node: Node) -> None:
        if node is self.haproxy:
            self.admin_socket.unlink(missing_ok=True)
        node.start()
        if node is self.haproxy:
            wait(self.admin_socket.exists, 30, "HAProxy's admin socket")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        for app in self.apps.values():
            app.stop()


def revision(root: Path, failing: bool) -> Path:
    """Every hook journals its run ("deployment event instance") and takes a moment;
    ValidateService fails when `failing`."""
    (root / "scripts").mkdir(parents=True)
    lines = ["version: 0.0", "os: linux", "hooks:"]
    for hook in HOOKS:
        status = 1 if failing and hook == LifecycleEvent.VALIDATE_SERVICE else 0
        script = root / "scripts" / f"{hook}.sh"
        script.write_text(
            '#!/bin/sh\necho "$DEPLOYMENT_ID $LIFECYCLE_EVENT $INSTANCE" >> "$JOURNAL"\n'
            f"sleep 0.2\nexit {status}\n"
        )
        script.chmod(0o755)
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh", "      timeout: 30"]
    (root / "appspec.yml").write_text("\n".join(lines) + "\n")
    return root


def retrying(call: Callable[[], object], what: str, timeout: float = 120) -> object:
    """`call`, again while a killed service is coming back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiError as error:
            if error.code not in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN"):
                raise
            if time.monotonic() > deadline:
                raise SystemExit(f"chaos: {what} kept failing: {error}") from None
            time.sleep(0.2)


@dataclass
class Stream:
    """Creates deployments, one running per application, until told to stop."""

    cluster: Cluster
    rng: random.Random
    revisions: dict[tuple[str, bool], common_pb2.RevisionLocation] = field(default_factory=dict)
    acknowledged: list[str] = field(default_factory=list)
    stops: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def prepare(self) -> None:
        with self.cluster.admin.client(self.cluster.fleet.address) as fleet:
            for application in APPLICATIONS:
                fleet.call(
                    fleet.registry.CreateApplication,
                    registry_pb2.CreateApplicationRequest(application_name=application),
                )
                for failing in (False, True):
                    source = revision(
                        self.cluster.workdir / f"src-{application}-{failing}", failing
                    )
                    bundle = source.with_suffix(".zip")
                    uploaded = fleet.upload_bundle(bundle, make_zip(source, bundle))
                    self.revisions[application, failing] = common_pb2.RevisionLocation(
                        revision_type=common_pb2.REVISION_TYPE_REGISTRY,
                        registry_location=uploaded.location,
                    )
        with self.cluster.admin.client(self.cluster.orchestrator.address) as client:
            client.call(
                client.traffic.CreateTargetGroup,
                traffic_pb2.CreateTargetGroupRequest(
                    name=TARGET_GROUP,
                    port=80,
                    deregistration_delay_seconds=1,
                    load_balancer=LOAD_BALANCER,
                    haproxy=traffic_pb2.HAProxyTargetGroup(backend="web"),
                ),
            )
            for host, app in self.cluster.apps.items():
                client.call(
                    client.traffic.SetTargetAddress,
                    traffic_pb2.SetTargetAddressRequest(
                        target_group_name=TARGET_GROUP, instance_name=host, address=app.address
                    ),
                )
            for index, application in enumerate(APPLICATIONS):
                client.call(client.orchestrator.CreateDeploymentGroup, _group(application, index))

    def run(self) -> None:
        """Keep one deployment per application going; now and then stop one."""
        with self.cluster.admin.client(self.cluster.orchestrator.address) as client:
            while not self.done.is_set():
                for application in APPLICATIONS:
                    self._next(client, application)
                self.done.wait(0.5)

    def _next(self, client: DeployClient, application: str) -> None:
        try:
            active = client.call(
                client.orchestrator.ListDeployments,
                orchestrator_pb2.ListDeploymentsRequest(
                    application_name=application,
                    deployment_group_name="hosts",
                    include_only_statuses=[
                        orchestrator_pb2.DEPLOYMENT_STATUS_CREATED,
                        orchestrator_pb2.DEPLOYMENT_STATUS_QUEUED,
                        orchestrator_pb2.DEPLOYMENT_STATUS_IN_PROGRESS,
                        orchestrator_pb2.DEPLOYMENT_STATUS_READY,
                    ],
                ),
            ).deployments
            if active:
                if self.rng.random() < STOP_CHANCE:
                    client.call(
                        client.orchestrator.StopDeployment,
                        orchestrator_pb2.StopDeploymentRequest(deployment_id=active[0]),
                    )
                    self.stops += 1
                return
            request = orchestrator_pb2.CreateDeploymentRequest(
                application_name=application,
                deployment_group_name="hosts",
                deployment_config_name=self.rng.choice(CONFIGS),
                revision=self.revisions[application, self.rng.random() < 0.25],
            )
            if application == BLUE_GREEN:
                request.target_instances.tag_filters.add(
                    key="cluster",
                    value="chaos-green",
                    type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE,
                )
            created = client.call(client.orchestrator.CreateDeployment, request)
            self.acknowledged.append(created.deployment_id)
        except ApiError:
            return  # a service is down or the deployment just ended: the next round sees


def _group(application: str, index: int) -> orchestrator_pb2.CreateDeploymentGroupRequest:
    """Every host; the first application rolls back on failure, the one behind HAProxy takes
    each host out of it and back."""
    group = orchestrator_pb2.CreateDeploymentGroupRequest(
        application_name=application,
        deployment_group_name="hosts",
        on_premises_instance_tag_filters=[
            common_pb2.TagFilter(
                key="cluster", value="chaos", type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE
            )
        ],
        auto_rollback_configuration=orchestrator_pb2.AutoRollbackConfiguration(
            enabled=index == 0, events=[orchestrator_pb2.AUTO_ROLLBACK_EVENT_DEPLOYMENT_FAILURE]
        ),
    )
    if application in (BEHIND_HAPROXY, BLUE_GREEN):
        group.deployment_style.deployment_option = (
            orchestrator_pb2.DEPLOYMENT_OPTION_WITH_TRAFFIC_CONTROL
        )
        group.load_balancer_info.target_group_info_list.add(name=TARGET_GROUP)
    if application == BLUE_GREEN:
        group.deployment_style.deployment_type = orchestrator_pb2.DEPLOYMENT_TYPE_BLUE_GREEN
        config = group.blue_green_deployment_configuration
        config.green_fleet_provisioning_option.action = (
            orchestrator_pb2.GREEN_FLEET_PROVISIONING_ACTION_DISCOVER_EXISTING
        )
        config.terminate_blue_instances_on_deployment_success.action = (
            orchestrator_pb2.BLUE_INSTANCE_ACTION_KEEP_ALIVE
        )
    return group


def inject(cluster: Cluster, rng: random.Random, kills: int) -> collections.Counter[str]:
    """Kill a random process every 0.5-2.5 s and start it again after up to a second."""
    killed: collections.Counter[str] = collections.Counter()
    for number in range(1, kills + 1):
        time.sleep(rng.uniform(0.5, 2.5))
        victim = rng.choice(cluster.nodes)
        victim.kill()
        killed["agents" if victim in cluster.hosts else victim.name] += 1
        time.sleep(rng.uniform(0, 1))
        cluster.restart(victim)
        print(f"  kill {number:>3}: {victim.name}", flush=True)
    return killed


def settle(cluster: Cluster) -> list[orchestrator_pb2.WatchDeploymentResponse]:
    """Wait for every deployment of the applications to end; their final records."""
    deadline = time.monotonic() + SETTLE_SECONDS
    with cluster.admin.client(cluster.orchestrator.address) as client:
        while True:
            records = [
                _record(client, deployment_id) for deployment_id in _every_deployment(client)
            ]
            open_ = [r for r in records if r.deployment_info.status not in TERMINAL]
            if not open_ or time.monotonic() > deadline:
                return records
            time.sleep(0.5)


def _every_deployment(client: DeployClient) -> list[str]:
    found: list[str] = []
    for application in APPLICATIONS:
        request = orchestrator_pb2.ListDeploymentsRequest(
            application_name=application, deployment_group_name="hosts", max_items=100
        )
        while True:
            page = retrying(
                partial(client.call, client.orchestrator.ListDeployments, request),
                "ListDeployments",
            )
            assert isinstance(page, orchestrator_pb2.ListDeploymentsResponse)
            found.extend(page.deployments)
            if not page.next_token:
                break
            request.next_token = page.next_token
    return found


def _record(client: DeployClient, deployment_id: str) -> orchestrator_pb2.WatchDeploymentResponse:
    """The deployment and its targets now (the first answer of its watch)."""

    def first() -> orchestrator_pb2.WatchDeploymentResponse:
        return next(iter(client.watch_deployment(deployment_id, timeout=30)))

    found = retrying(first, f"reading {deployment_id}")
    assert isinstance(found, orchestrator_pb2.WatchDeploymentResponse)
    return found


@dataclass
class Verdict:
    name: str
    problems: list[str]


def check(
    cluster: Cluster,
    records: list[orchestrator_pb2.WatchDeploymentResponse],
    acknowledged: list[str],
) -> list[Verdict]:
    journal = _journal(cluster)
    return [
        Verdict("every deployment reached a terminal state", _unfinished(records)),
        Verdict("no lifecycle event ran twice on a host", _ran_twice(journal)),
        Verdict("targets, overviews and events agree", _disagreements(records, journal)),
        Verdict("the minimum-healthy rule never broke", _unhealthy(records)),
        Verdict("no acknowledged deployment was lost", _lost(records, acknowledged)),
    ]


def _journal(cluster: Cluster) -> collections.Counter[tuple[str, str, str]]:
    runs: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for host in cluster.hosts:
        path = cluster.journal(host.name)
        if path.exists():
            for line in path.read_text().splitlines():
                deployment, event, instance = line.split()
                runs[deployment, event, instance] += 1
    return runs


def _unfinished(records: list[orchestrator_pb2.WatchDeploymentResponse]) -> list[str]:
    return [
        f"{r.deployment_info.deployment_id} is "
        f"{orchestrator_pb2.DeploymentStatus.Name(r.deployment_info.status)}"
        for r in records
        if r.deployment_info.status not in TERMINAL
    ]


def _ran_twice(journal: collections.Counter[tuple[str, str, str]]) -> list[str]:
    return [
        f"{event} of {d} ran {n} times on {host}"
        for (d, event, host), n in journal.items()
        if n > 1
    ]


TARGET_FIELDS = {
    orchestrator_pb2.TARGET_STATUS_PENDING: "pending",
    orchestrator_pb2.TARGET_STATUS_IN_PROGRESS: "in_progress",
    orchestrator_pb2.TARGET_STATUS_SUCCEEDED: "succeeded",
    orchestrator_pb2.TARGET_STATUS_FAILED: "failed",
    orchestrator_pb2.TARGET_STATUS_SKIPPED: "skipped",
    orchestrator_pb2.TARGET_STATUS_READY: "ready",
}
SUCCEEDED = common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED
SKIPPED = common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED
RAN = (SUCCEEDED, common_pb2.LIFECYCLE_EVENT_STATUS_FAILED)
JOINING = ALLOW_TRAFFIC_EVENTS
"""A blue/green replacement's events once it is installed: they join the load balancer."""


def _disagreements(
    records: list[orchestrator_pb2.WatchDeploymentResponse],
    journal: collections.Counter[tuple[str, str, str]],
) -> list[str]:
    problems = []
    for record in records:
        info = record.deployment_info
        counts = collections.Counter(TARGET_FIELDS[t.status] for t in record.instance_targets)
        overview = {f: getattr(info.deployment_overview, f) for f in TARGET_FIELDS.values()}
        if overview != {f: counts.get(f, 0) for f in TARGET_FIELDS.values()}:
            problems.append(f"{info.deployment_id}: overview {overview} but targets {dict(counts)}")
        stopped = info.status == orchestrator_pb2.DEPLOYMENT_STATUS_STOPPED
        for target in record.instance_targets:
            # A stop leaves a half-deployed target Failed, its remaining events Skipped.
            statuses = [e.status for e in target.lifecycle_events]
            ok = {
                orchestrator_pb2.TARGET_STATUS_SUCCEEDED: all(s == SUCCEEDED for s in statuses),
                orchestrator_pb2.TARGET_STATUS_FAILED: common_pb2.LIFECYCLE_EVENT_STATUS_FAILED
                in statuses
                or (stopped and SKIPPED in statuses),
                # never started — or, blue/green, installed and Ready when the deployment
                # ended: its traffic events skipped
                orchestrator_pb2.TARGET_STATUS_SKIPPED: all(
                    s in (SUCCEEDED, SKIPPED) for s in statuses
                )
                and statuses[-1:] == [SKIPPED],
            }.get(target.status, True)
            if not ok:
                problems.append(f"{info.deployment_id}/{target.target_id}: events {statuses}")
            for event in target.lifecycle_events:
                key = (info.deployment_id, event.lifecycle_event_name, target.target_id)
                if journal[key] and event.status not in RAN:
                    problems.append(f"{'/'.join(key)} ran but is recorded {event.status}")
    return problems


def _unhealthy(records: list[orchestrator_pb2.WatchDeploymentResponse]) -> list[str]:
    """At no moment more targets installing than the config allows: in place, of all targets;
    blue/green, of the replacement fleet before it takes traffic (the originals serve
    meanwhile, and the replacements join the load balancer together at the reroute)."""
    problems = []
    for record in records:
        info = record.deployment_info
        allowed = MOST_OUT_OF_SERVICE.get(info.deployment_config_name)
        if allowed is None:
            continue
        blue_green = any(t.instance_label for t in record.instance_targets)
        targets = [
            t for t in record.instance_targets if not blue_green or t.instance_label == "Green"
        ]
        spans = []
        for target in targets:
            ran = [
                e
                for e in target.lifecycle_events
                if e.status in RAN and not (blue_green and e.lifecycle_event_name in JOINING)
            ]
            if ran:
                start = min(e.start_time.ToNanoseconds() for e in ran)
                end = max(e.end_time.ToNanoseconds() for e in ran)
                spans.append((start, end))
        most = max((sum(s <= t < e for s, e in spans) for t, _ in spans), default=0)
        if most > allowed(len(targets)):
            problems.append(
                f"{info.deployment_id} ({info.deployment_config_name}): {most} targets out of "
                f"service at once, at most {allowed(len(targets))} allowed"
            )
    return problems


def _lost(
    records: list[orchestrator_pb2.WatchDeploymentResponse], acknowledged: list[str]
) -> list[str]:
    known = {r.deployment_info.deployment_id for r in records}
    return [f"{d} was acknowledged but is not on record" for d in acknowledged if d not in known]


def run(kills: int, agents: int, seed: int, database_url: str, workdir: Path) -> int:
    cluster = Cluster(workdir, agents, database_url)
    started = time.monotonic()
    try:
        cluster.start()
        stream = Stream(cluster, random.Random(seed))
        stream.prepare()
        driver = threading.Thread(target=stream.run, daemon=True)
        driver.start()
        print(f"chaos: seed {seed}, {agents} agents, {kills} kills", flush=True)
        killed = inject(cluster, random.Random(seed + 1), kills)
        stream.done.set()
        driver.join(30)
        records = settle(cluster)
        verdicts = check(cluster, records, stream.acknowledged)
    finally:
        cluster.stop()
    statuses = collections.Counter(
        orchestrator_pb2.DeploymentStatus.Name(r.deployment_info.status).removeprefix(
            "DEPLOYMENT_STATUS_"
        )
        for r in records
    )
    print(
        f"chaos: {sum(killed.values())} kills ({_counts(killed)}) in "
        f"{time.monotonic() - started:.0f} s; {len(records)} deployments ({_counts(statuses)}), "
        f"{stream.stops} stop requests"
    )
    for verdict in verdicts:
        mark = "ok" if not verdict.problems else f"BROKEN ({len(verdict.problems)})"
        print(f"  invariant: {verdict.name}: {mark}")
        for problem in verdict.problems[:10]:
            print(f"    {problem}")
    return 1 if any(v.problems for v in verdicts) else 0


def _counts(counter: collections.Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counter.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opendeploy-chaos-"))
    status = run(args.kills, args.agents, args.seed, args.database_url, workdir)
    if args.keep or status:
        print(f"chaos: logs in {workdir}")
    sys.exit(status)


if __name__ == "__main__":
    main()
