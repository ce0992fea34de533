"""`make cluster` / `make demo` / `make down`: services behind HAProxy, agents, the demo deploy."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.harness import cli
from tests.loadbalancer import haproxy_binary
from tests.processes import free_port_range, wait_until
from tests.prometheus import api, prometheus_binary, rule_names, targets_up

REPO = Path(__file__).resolve().parents[2]


def localcluster(
    action: str, directory: Path, port_base: int, agents: int = 3
) -> subprocess.CompletedProcess[str]:
    """Run `python -m deploy.localcluster` (what make cluster/demo/down run)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.localcluster",
            action,
            "--dir",
            str(directory),
            "--port-base",
            str(port_base),
            "--agents",
            str(agents),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )


@pytest.fixture
def haproxy_and_prometheus() -> None:
    haproxy_binary()  # fails under CI=true when missing, skips elsewhere
    prometheus_binary()


OPERATORS_RULE = """groups:
  - name: mine
    rules:
      - alert: MyOwnAlarm
        expr: vector(0) > 1
"""


@pytest.mark.usefixtures("haproxy_and_prometheus")
@pytest.mark.timeout(300)  # two whole demos (each waits out its canary steps): ~2 minutes
def test_cluster_demo_and_down(tmp_path: Path) -> None:
    base = free_port_range(300)  # services, apps, Prometheus, agents' /metrics (PORT_BASE+201…)
    directory = tmp_path / "cluster"
    try:
        up = localcluster("up", directory, base)
        assert up.returncode == 0, up.stdout + up.stderr
        env = (directory / "env").read_text()
        assert f"export DEPLOY_ENDPOINT=127.0.0.1:{base}" in env
        assert f"export WEB_URL=http://127.0.0.1:{base + 80}/" in env
        assert "export DEPLOY_ACCESS_KEY_ID=ODAK" in env
        assert (directory / "env").stat().st_mode & 0o777 == 0o600  # it holds a secret
        assert f"export DEPLOY_CA_FILE={directory}/data/pki/ca.pem" in env
        admin = dict(line.removeprefix("export ").split("=", 1) for line in env.splitlines())
        trusting = {"DEPLOY_CA_FILE": admin["DEPLOY_CA_FILE"]}
        anonymous = cli(f"127.0.0.1:{base}", "list-applications", env=trusting)
        assert "(UNAUTHENTICATED)" in anonymous.stderr  # authentication is on
        plaintext = cli(f"http://127.0.0.1:{base}", "list-applications", env=admin)
        assert "(UNAVAILABLE)" in plaintext.stderr  # the front door speaks TLS only
        check_prometheus(directory, base, admin["PROMETHEUS_URL"])

        demo = localcluster("demo", directory, base)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert f"PROMETHEUS_URL=http://127.0.0.1:{base + 90}" in demo.stdout
        assert "ValidateService" in demo.stdout
        # the broken revision fails, its script's output is shown, and the rollback restores
        assert "health check: /healthz answered 503" in demo.stdout
        assert "rolled back by d-" in demo.stdout
        rollback_line = next(line for line in demo.stdout.splitlines() if "rollback d-" in line)
        assert "redeploys version" in rollback_line
        # blue/green: a provisioned replacement fleet, the weights moving, the originals retired
        assert "traffic: 25% to the replacement fleet" in demo.stdout
        assert "traffic: 100% to the replacement fleet" in demo.stdout
        assert "the originals agent-1, agent-2, agent-3 were retired" in demo.stdout
        bodies = {
            urllib.request.urlopen(f"http://127.0.0.1:{base + 80}/", timeout=5).read()
            for _ in range(12)
        }
        assert {b.split(b" on ")[1].strip() for b in bodies} == {b"agent-4", b"agent-5", b"agent-6"}
        assert all(b.split(b" on ")[0].endswith(b"-green") for b in bodies)
        check_codedeploy_sample(f"127.0.0.1:{base}", directory, admin)
        receiver = TriggerReceiver()
        trigger = (
            f"triggerName=watch,triggerTargetUrl={receiver.url},triggerEvents=DeploymentSuccess"
        )
        subscribed = cli(
            f"127.0.0.1:{base}",
            "update-deployment-group",
            "--application-name",
            "hello-web",
            "--current-deployment-group-name",
            "local",
            "--trigger-configurations",
            trigger,
            env=admin,
        )
        assert subscribed.returncode == 0, subscribed.stderr

        # The cluster survives its own restart: the provisioned agents come back (the retired
        # ones stay retired) and the demo runs again.
        down = localcluster("down", directory, base)
        assert down.returncode == 0, down.stderr
        again = localcluster("up", directory, base)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "3 agents online: agent-4 " in again.stdout
        second = localcluster("demo", directory, base)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "the originals agent-4, agent-5, agent-6 were retired" in second.stdout
        wait_until(lambda: receiver.posts, 30, "a trigger delivery")
        receiver.close()
        anonymous = cli(f"127.0.0.1:{base}", "list-applications", env=trusting)
        assert "(UNAUTHENTICATED)" in anonymous.stderr  # an RPC error for the dashboard
        check_dashboard(admin["PROMETHEUS_URL"])
    finally:
        down = localcluster("down", directory, base)
    assert down.returncode == 0, down.stderr
    assert not list((directory / "pids").glob("*.pid"))
    for app_port in (base + 81, base + 84):  # an original and a replacement
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{app_port}/", timeout=2)


def check_prometheus(directory: Path, base: int, url: str) -> None:
    """Prometheus scrapes the five services and the three agents, with OpenDeploy's alerting
    rules; a rule file dropped into CLUSTER_DIR/rules is read on the next make cluster."""
    assert url == f"http://127.0.0.1:{base + 90}"
    wait_until(lambda: targets_up(url, "opendeploy") == 5, 30, "the services scraped")
    wait_until(lambda: targets_up(url, "opendeploy-agents") == 3, 30, "the agents scraped")
    assert {"OpenDeployAgentOffline", "OpenDeployDeploymentFailed", "OpenDeployRpcErrors"} <= (
        rule_names(url)
    )
    (directory / "rules" / "mine.yml").write_text(OPERATORS_RULE)
    again = localcluster("up", directory, base)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Prometheus read its rules again" in again.stdout
    wait_until(lambda: "MyOwnAlarm" in rule_names(url), 30, "the operator's rule loaded")


class TriggerReceiver:
    """A webhook receiver on 127.0.0.1 that counts what is POSTed to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    @property
    def posts(self) -> int:
        return len(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def check_dashboard(url: str) -> None:
    """After the demos (in place, rollback, blue/green, a trigger, a refused call), every query
    of every panel of monitoring/grafana/opendeploy.json returns data, and every metric in
    docs/monitoring.md's table is scraped."""
    dashboard = json.loads((REPO / "monitoring/grafana/opendeploy.json").read_text())
    queries = {
        target["expr"].replace("$__rate_interval", "5m"): panel["title"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }

    def empty() -> list[str]:
        return [
            title
            for query, title in queries.items()
            if not api(url, "/api/v1/query", query=query)["result"]
        ]

    wait_until(lambda: not empty(), 60, "data for every dashboard panel")
    scraped = {
        item["metric"]["__name__"]
        for item in api(url, "/api/v1/query", query='{__name__=~"opendeploy_.+"}')["result"]
    }
    page = (REPO / "docs/monitoring.md").read_text()
    documented = set(re.findall(r"^\| `(opendeploy_[a-z_]+)`", page, re.MULTILINE))
    assert len(documented) >= 10, "the metrics table of docs/monitoring.md was not found"
    missing = {
        name for name in documented if not {name, f"{name}_bucket", f"{name}_total"} & scraped
    }
    assert not missing, f"documented but not scraped: {sorted(missing)}"


def check_codedeploy_sample(endpoint: str, directory: Path, admin: dict[str, str]) -> None:
    """examples/codedeploy-sample (files, permissions, every hook) deploys twice with the result
    the AppSpec reference describes (the CLI as the cluster's administrator, `admin`)."""
    app = "codedeploy-sample"
    assert cli(endpoint, "create-application", "--application-name", app, env=admin).returncode == 0
    assert (
        cli(
            endpoint,
            "create-deployment-group",
            "--application-name",
            app,
            "--deployment-group-name",
            "fleet",
            "--on-premises-instance-tag-filters",
            "Key=cluster,Value=local,Type=KEY_AND_VALUE",
            env=admin,
        ).returncode
        == 0
    )
    pushed = cli(
        endpoint,
        "push",
        "--application-name",
        app,
        "--source",
        str(REPO / "examples/codedeploy-sample"),
        env=admin,
    ).json()
    location = f"digest={pushed['revision']['registryLocation']['digest']},bundleType=zip"
    ids = []
    for _ in range(2):
        created = cli(
            endpoint,
            "create-deployment",
            "--application-name",
            app,
            "--deployment-group-name",
            "fleet",
            "--registry-location",
            location,
            env=admin,
        )
        ids.append(created.json()["deploymentId"])
        waited = cli(
            endpoint, "wait", "deployment-successful", "--deployment-id", ids[-1], env=admin
        )
        assert waited.returncode == 0, waited.stderr
    first, second = ids
    targets = cli(endpoint, "list-deployment-targets", "--deployment-id", first, env=admin).json()
    assert len(targets["targetIds"]) == 3
    for name in targets["targetIds"]:
        prefix = directory / "agents" / name / "prefix"
        assert (prefix / "var/www/html/index.html").is_file()
        assert oct((prefix / "opt/sample-app/bin/run.sh").stat().st_mode & 0o777) == "0o755"
        assert oct((prefix / "opt/sample-app/bin/README.txt").stat().st_mode & 0o777) == "0o644"
        assert oct((prefix / "etc/sample-app/secrets.properties").stat().st_mode & 0o777) == "0o640"
        hooks = (prefix / "var/log/sample-app/hooks.log").read_text().split("\n")
        assert [h for h in hooks if h] == [
            # First deployment: no previous revision, so no ApplicationStop; no load balancer,
            # so no traffic hooks.
            f"BeforeInstall {first}",
            f"AfterInstall {first}",
            f"ApplicationStart {first}",
            f"ValidateService {first}",
            # Second: ApplicationStop from the revision the first one installed.
            f"ApplicationStop {second}",
            f"BeforeInstall {second}",
            f"AfterInstall {second}",
            f"ApplicationStart {second}",
            f"ValidateService {second}",
        ]
