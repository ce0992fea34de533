"""Prometheus for the local cluster: Debian's package, scraping every service and every agent
(those the provisioner adds later included, through a file of targets rewritten whenever an
agent starts), with OpenDeploy's alerting rules (monitoring/rules) and any rule file dropped
into CLUSTER_DIR/rules/ — read at every start and on SIGHUP."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from deploy.localcluster.layout import SERVICES, ClusterLayout
from deploy.localcluster.packages import find_or_install

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
SCRAPE_SECONDS = 5


def find_or_install_prometheus(say: Callable[[str], None]) -> str | None:
    return find_or_install("prometheus", "prometheus", say)


def render_config(layout: ClusterLayout, with_haproxy: bool) -> dict[str, Any]:
    ports = (
        [layout.metrics_port(s) for s in SERVICES]
        if with_haproxy
        else [layout.embedded_metrics_port]
    )
    interval = f"{SCRAPE_SECONDS}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(MONITORING / "rules" / "*.yml"), str(layout.rules_dir / "*.yml")],
        "scrape_configs": [
            {
                "job_name": "opendeploy",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}],
            },
            {
                "job_name": "opendeploy-agents",
                "file_sd_configs": [
                    {"files": [str(layout.agent_targets)], "refresh_interval": interval}
                ],
            },
        ],
    }


def write_agent_targets(layout: ClusterLayout) -> None:
    """Every agent this cluster started, by the name it runs as (replaced whole: Prometheus
    never reads half a file)."""
    targets = [
        {
            "targets": [f"127.0.0.1:{layout.agent_metrics_port(i)}"],
            "labels": {"instance_name": layout.agent_name(i)},
        }
        for i in layout.agent_indices()
    ]
    staged = layout.agent_targets.with_suffix(".tmp")
    staged.write_text(json.dumps(targets, indent=1))
    staged.replace(layout.agent_targets)


def prepare(layout: ClusterLayout, with_haproxy: bool) -> Path:
    """Write the configuration, the rules directory and the targets; returns the config."""
    layout.rules_dir.mkdir(parents=True, exist_ok=True)
    write_agent_targets(layout)
    config = layout.directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(render_config(layout, with_haproxy)))
    return config


def command(binary: str, layout: ClusterLayout, config: Path) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={layout.directory / 'prometheus'}",
        f"--web.listen-address=127.0.0.1:{layout.prometheus_port}",
    ]


def reload(layout: ClusterLayout) -> bool:
    """Have a running Prometheus read its configuration and rule files again (SIGHUP)."""
    pid_file = layout.pids / "prometheus.pid"
    try:
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True
