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
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.chaos_cluster import LOAD_BALANCER, Cluster
from bench.invariants import check
from deploy.bundle import make_zip
from deploy.client import TERMINAL, DeployClient
from deploy.errors import ApiError
from deploy.lifecycle import IN_PLACE_EVENTS, TRAITS, LifecycleEvent
from deploy.v1 import common_pb2, orchestrator_pb2, registry_pb2, traffic_pb2

APPLICATIONS = ("chaos-a", "chaos-b", "chaos-lb", "chaos-bg")
"""Four applications whose groups hold the same hosts (their events queue on each agent)."""
BEHIND_HAPROXY = "chaos-lb"
"""The application whose deployments block and allow traffic through HAProxy."""
BLUE_GREEN = "chaos-bg"
"""The application deployed blue/green: its replacement fleet is the GREEN_HOSTS."""
TARGET_GROUP = "chaos-web"
CONFIGS = (
    "CodeDeployDefault.OneAtATime",
    "CodeDeployDefault.HalfAtATime",
    "CodeDeployDefault.AllAtOnce",
)
HOOKS = tuple(e for e in IN_PLACE_EVENTS if TRAITS[e].scripts)
STOP_CHANCE = 0.02
"""Of each look at a running deployment (two a second), the chance it is stopped."""
SETTLE_SECONDS = 240
"""How long the deployments get to end once the kills stop."""


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
        verdicts = check(
            [cluster.journal(h.name) for h in cluster.hosts], records, stream.acknowledged
        )
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
