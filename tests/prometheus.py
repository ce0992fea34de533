"""Prometheus for tests (Debian's package, started here on loopback) and a metric the test
controls, served for it to scrape — what an application's own error counter would be."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.processes import Process, free_port, required_tool, spawn, wait_until


def prometheus_binary() -> str:
    return required_tool("prometheus", "prometheus")


class ControlledMetric:
    """`opendeploy_test_errors`, served on its own port (its own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge("opendeploy_test_errors", "Set by the test.", registry=self.registry)
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, value: float) -> None:
        self.gauge.set(value)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def api(url: str, path: str, **params: str) -> Any:
    """The `data` of a Prometheus HTTP API answer."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def targets_up(url: str, job: str) -> int:
    """How many of the job's targets the last scrape reached."""
    result = api(url, "/api/v1/query", query=f'sum(up{{job="{job}"}})')["result"]
    return int(float(result[0]["value"][1])) if result else 0


def rule_names(url: str) -> set[str]:
    groups = api(url, "/api/v1/rules")["groups"]
    return {rule["name"] for group in groups for rule in group["rules"]}


@dataclass
class Prometheus:
    directory: Path
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        return api(self.url, path, **params)

    def alert_state(self, name: str) -> str:
        """firing, pending or inactive."""
        alerts = self.api("/api/v1/alerts")["alerts"]
        states = [a["state"] for a in alerts if a["labels"].get("alertname") == name]
        return states[0] if states else "inactive"

    def wait_alert(self, name: str, state: str) -> None:
        wait_until(lambda: self.alert_state(name) == state, 30, f"alert {name} {state}")

    def stop(self) -> None:
        self.process.stop()


def start_prometheus(directory: Path, targets: list[str], rules: dict[str, Any]) -> Prometheus:
    """Scraping `targets` every second and evaluating `rules` (a rule file's content) every
    second, so alerts follow a metric within a few seconds."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(directory / "rules.yml")],
        "scrape_configs": [{"job_name": "test", "static_configs": [{"targets": targets}]}],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = spawn(
        "prometheus",
        [
            prometheus_binary(),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        directory / "prometheus.log",
    )
    running = Prometheus(directory, process, port)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{running.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_until(ready, 60, "Prometheus ready")
    return running
