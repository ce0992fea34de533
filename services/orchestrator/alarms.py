"""Alarms: CodeDeploy's alarmConfiguration, with Prometheus alerting rules as the alarms.

While a deployment that watches alarms is active, the orchestrator reads Prometheus every
`alarm_poll_seconds`: which of the named alerting rules fired at any moment since the last
reading (`ALERTS{alertstate="firing"}` over that window, so an alert that fired and resolved
between two readings still counts). What a reading means is decided here, pure (`judge`):

* an alarm fired → the deployment stops with ALARM_ACTIVE (rolled back when its configuration
  covers DEPLOYMENT_STOP_ON_ALARM);
* Prometheus unreachable, or an alarm that is no alerting rule there, `POLL_FAILURES_ALLOWED`
  times in a row → the deployment fails with ALARM_ACTIVE, unless `ignorePollAlarmFailure`,
  when it goes on as if the alarms were clear;
* none fired → the deployment records until when it is clear: a blue/green traffic step (and the
  retirement of the originals) moves on only once the alarms were read clear past its due time.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from services.core.clock import utcnow
from services.core.errors import DeployError
from services.orchestrator.domain import DeploymentErrorCode, ErrorInformation
from services.orchestrator.groups import AlarmConfig
from services.orchestrator.happenings import ActFailed, AlarmFired, AlarmsClear, Happening
from services.orchestrator.runner import DeploymentRunner
from services.orchestrator.states import ACTIVE_DEPLOYMENT
from services.orchestrator.store import DeploymentStore

log = logging.getLogger(__name__)

POLL_FAILURES_ALLOWED = 3
"""Unreadable alarms fail a deployment only after this many readings in a row (a Prometheus
restart is not an outage)."""
FIRING_QUERY = 'max by (alertname) (max_over_time(ALERTS{{alertstate="firing"}}[{seconds}s]))'


class AlarmsUnreadable(Exception):
    """Prometheus could not be asked, or did not answer as Prometheus does."""


class AlarmSource(Protocol):
    async def fired(self, window_seconds: int) -> set[str]:
        """Names of the alerting rules that fired at any moment in the last window."""

    async def rules(self) -> set[str]:
        """Names of the alerting rules there are."""


class PrometheusAlarms:
    """Prometheus's HTTP API at `url` (the server's `prometheus_url`)."""

    def __init__(self, url: str, timeout_seconds: float = 5.0) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout_seconds

    async def fired(self, window_seconds: int) -> set[str]:
        data = await self._get(
            "/api/v1/query", {"query": FIRING_QUERY.format(seconds=window_seconds)}
        )
        return {str(item["metric"].get("alertname", "")) for item in data.get("result", [])}

    async def rules(self) -> set[str]:
        data = await self._get("/api/v1/rules", {"type": "alert"})
        return {
            str(rule.get("name", ""))
            for group in data.get("groups", [])
            for rule in group.get("rules", [])
        }

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(self._url + path, params=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise AlarmsUnreadable(f"{self._url}{path}: {error or type(error).__name__}") from None
        if response.status_code != 200 or body.get("status") != "success":
            detail = body.get("error", "") if isinstance(body, dict) else ""
            raise AlarmsUnreadable(f"{self._url}{path}: HTTP {response.status_code} {detail}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise AlarmsUnreadable(f"{self._url}{path}: no data in the answer")
        return data


class NoPrometheus:
    """The server has no `prometheus_url`: alarms cannot be read."""

    async def fired(self, window_seconds: int) -> set[str]:
        raise AlarmsUnreadable("this server has no prometheus_url to read alarms from")

    async def rules(self) -> set[str]:
        raise AlarmsUnreadable("this server has no prometheus_url to read alarms from")


@dataclass(frozen=True)
class Reading:
    """One look at the alarms of a deployment."""

    at: datetime
    fired: tuple[str, ...] = ()
    """Configured alarms that fired in the window."""
    problem: str = ""
    """Why the alarms could not be read (empty: they were)."""


def judge(config: AlarmConfig, reading: Reading, failures: int) -> Happening:
    """What a reading means for the deployment; `failures` counts unreadable readings in a
    row, this one included. None: nothing to record yet."""
    if reading.fired:
        return AlarmFired(reading.fired)
    if not reading.problem:
        return AlarmsClear(reading.at)
    if config.ignore_poll_failure:
        return AlarmsClear(reading.at)
    if failures < POLL_FAILURES_ALLOWED:
        return None
    return ActFailed(
        ErrorInformation(
            DeploymentErrorCode.ALARM_ACTIVE,
            f"The alarms could not be read {failures} times in a row ({reading.problem}); "
            "ignorePollAlarmFailure is false.",
        )
    )


async def read(
    source: AlarmSource, config: AlarmConfig, since: datetime, at: datetime, check_rules: bool
) -> Reading:
    """The configured alarms that fired between `since` and `at`; with `check_rules`, an alarm
    that is no alerting rule makes the reading a problem (it could never fire)."""
    window = max(math.ceil((at - since).total_seconds()) + 1, 1)
    try:
        if check_rules:
            missing = sorted(set(config.alarms) - await source.rules())
            if missing:
                return Reading(
                    at, problem=f"no alerting rule named {', '.join(missing)} in Prometheus"
                )
        fired = await source.fired(window)
    except AlarmsUnreadable as error:
        return Reading(at, problem=str(error))
    return Reading(at, fired=tuple(name for name in config.alarms if name in fired))


class AlarmWatch:
    """One watch per active deployment that watches alarms, for as long as its runner lives."""

    def __init__(
        self,
        store: DeploymentStore,
        source: AlarmSource,
        poll_seconds: float,
        is_current: Callable[[DeploymentRunner], bool],
    ) -> None:
        self._store = store
        self._source = source
        self._poll_seconds = poll_seconds
        self._is_current = is_current

    async def watch(self, runner: DeploymentRunner) -> None:
        try:
            deployment = await self._store.get(runner.deployment_id)
        except DeployError:
            return
        config = deployment.alarms
        if not config.watched or deployment.status not in ACTIVE_DEPLOYMENT:
            return
        since = deployment.alarms_clear_at or deployment.created_at
        gated = deployment.blue_green_style
        failures = 0
        while self._is_current(runner):
            reading = await read(self._source, config, since, utcnow(), check_rules=failures == 0)
            failures = failures + 1 if reading.problem else 0
            happened = judge(config, reading, failures)
            if reading.problem:
                log.warning(
                    "alarms unreadable",
                    extra={
                        "fields": {
                            "deployment_id": runner.deployment_id,
                            "problem": reading.problem,
                            "attempt": failures,
                        }
                    },
                )
            if not self._is_current(runner):  # no await from here to tell()
                return
            if happened is not None and (gated or not isinstance(happened, AlarmsClear)):
                runner.tell(happened)  # only blue/green steps wait for a clear reading
            if isinstance(happened, AlarmsClear):
                since = happened.until
            elif isinstance(happened, AlarmFired | ActFailed):
                log.warning(
                    "alarm gate stopped the deployment",
                    extra={"fields": {"deployment_id": runner.deployment_id, "why": happened}},
                )
                return
            await asyncio.sleep(self._poll_seconds)  # the polling schedule, not a wait on a state
