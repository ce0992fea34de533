"""What must hold after `make chaos`, checked on every deployment's record and the hosts'
journals of their hook runs."""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.client import TERMINAL
from deploy.lifecycle import ALLOW_TRAFFIC_EVENTS
from deploy.v1 import common_pb2, orchestrator_pb2

MOST_OUT_OF_SERVICE: dict[str, Callable[[int], int]] = {
    "CodeDeployDefault.OneAtATime": lambda n: 1,
    "CodeDeployDefault.HalfAtATime": lambda n: n - n // 2,
    "CodeDeployDefault.AllAtOnce": lambda n: n,
}
"""Targets one deployment may have out of service at once: N minus its minimum healthy hosts."""


@dataclass
class Verdict:
    name: str
    problems: list[str]


def check(
    journals: Sequence[Path],
    records: list[orchestrator_pb2.WatchDeploymentResponse],
    acknowledged: list[str],
) -> list[Verdict]:
    """Each invariant and what breaks it; `journals`: the hosts' journals of the hook runs."""
    journal = _journal(journals)
    return [
        Verdict("every deployment reached a terminal state", _unfinished(records)),
        Verdict("no lifecycle event ran twice on a host", _ran_twice(journal)),
        Verdict("targets, overviews and events agree", _disagreements(records, journal)),
        Verdict("the minimum-healthy rule never broke", _unhealthy(records)),
        Verdict("no acknowledged deployment was lost", _lost(records, acknowledged)),
    ]


def _journal(journals: Sequence[Path]) -> collections.Counter[tuple[str, str, str]]:
    runs: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for path in journals:
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
        blue_green = any(t.label for t in record.instance_targets)
        targets = [
            t
            for t in record.instance_targets
            if not blue_green or t.label == orchestrator_pb2.TARGET_LABEL_GREEN
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
