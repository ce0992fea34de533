"""monitoring/: the dashboard and the alerting rules use only metrics that exist, and every
metric is documented in docs/monitoring.md's table with its labels."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import agent.metrics  # noqa: F401  (registers the agent's metrics)
import services.core.metrics
import services.fleet.health  # noqa: F401
from tests.processes import required_tool

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
NAME = re.compile(r"\bopendeploy_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported() -> set[str]:
    """Every opendeploy_* family this code registers, as Prometheus names its series."""
    return {f.name for f in REGISTRY.collect() if f.name.startswith("opendeploy_")}


def family(series: str) -> str:
    for suffix in SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana" / "opendeploy.json").read_text())
    found = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for rules in (MONITORING / "rules").glob("*.yml"):
        for group in yaml.safe_load(rules.read_text())["groups"]:
            found += [rule["expr"] for rule in group["rules"]]
    return found


def test_the_dashboard_and_rules_query_only_metrics_that_exist() -> None:
    names = exported()
    for expr in expressions():
        for series in NAME.findall(expr):
            assert family(series) in names, f"{series} in {expr!r} is no metric of OpenDeploy"


def test_every_metric_is_in_the_monitoring_pages_table() -> None:
    page = (REPO / "docs/monitoring.md").read_text()
    for name in exported():
        documented = f"`{name}`" in page or f"`{name}_total`" in page
        assert documented, f"{name} is not in docs/monitoring.md's metrics table"


def test_the_alerting_rules_are_valid_for_prometheus() -> None:
    promtool = required_tool("promtool", "prometheus")
    for rules in (MONITORING / "rules").glob("*.yml"):
        checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
