"""Two fleets of hello-web behind one HAProxy target group, for the blue/green tests: deploying,
switching and retargeting them, and what the load balancer serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cluster import Cluster
from tests.harness import unique
from tests.integration.apps import App, hello_web
from tests.loadbalancer import LOAD_BALANCER, HAProxy, sample

BLUE_GREEN = "deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL"


class Fleets:
    """hello-web on two fleets of two agents each (tag fleet=a / fleet=b) behind one target
    group; `live` is the fleet the group (and the load balancer) serves from."""

    def __init__(self, running: Cluster, proxy: HAProxy, tmp: Path) -> None:
        self.running, self.proxy, self.tmp = running, proxy, tmp
        self.members = {"a": running.agents[:2], "b": running.agents[2:]}
        for fleet, agents in self.members.items():
            self.ok(
                "add-tags-to-on-premises-instances",
                "--instance-names",
                *[a.name for a in agents],
                "--tags",
                f"Key=fleet,Value={fleet}",
            )
        self.group = unique("bg")
        self.ok(
            "create-target-group",
            "--name",
            self.group,
            "--load-balancer",
            LOAD_BALANCER,
            "--port",
            "80",
            "--deregistration-delay-seconds",
            "10",
            "--haproxy-backend",
            proxy.backend,
        )
        for agent in running.agents:
            self.ok(
                "set-target-address",
                "--target-group-name",
                self.group,
                "--instance-name",
                agent.name,
                "--address",
                f"127.0.0.1:{agent.app_port}",
            )
        self.live = "a"
        self.app = App(
            running,
            "--deployment-style",
            BLUE_GREEN,
            "--load-balancer-info",
            f"targetGroupInfoList=[{{name={self.group}}}]",
        )
        self.retarget(self.live)
        self.ok(
            "update-deployment-group",
            *self.group_flags(),
            "--auto-rollback-configuration",
            "enabled=true,events=DEPLOYMENT_FAILURE",
        )
        self.versions = 0

    def ok(self, *args: str) -> Any:
        result = self.running.cli(*args)
        assert result.returncode == 0, result.stderr
        return result.json() if result.stdout.strip() else None

    def group_flags(self) -> list[str]:
        return [
            "--application-name",
            self.app.name,
            "--current-deployment-group-name",
            self.app.group,
        ]

    def retarget(self, fleet: str) -> None:
        """The group's members (the originals of the next deployment) are `fleet`."""
        self.ok(
            "update-deployment-group",
            *self.group_flags(),
            "--on-premises-instance-tag-filters",
            f"Key=fleet,Value={fleet},Type=KEY_AND_VALUE",
        )
        self.live = fleet

    @property
    def idle(self) -> str:
        return "b" if self.live == "a" else "a"

    def configure(self, blue_green: str) -> None:
        self.ok(
            "update-deployment-group",
            *self.group_flags(),
            "--blue-green-deployment-configuration",
            blue_green,
        )

    def deploy(
        self,
        version: str,
        *flags: str,
        validate_exit: int = 0,
        after_allow_exit: int = 0,
        config: str = "CodeDeployDefault.AllAtOnce",
    ) -> str:
        source = hello_web(self.tmp / unique(version), version, validate_exit=validate_exit)
        if after_allow_exit:
            script = source / "scripts" / "after_allow.sh"
            script.write_text(
                "#!/bin/sh\necho 'smoke test through the load balancer failed'\n"
                f"exit {after_allow_exit}\n"
            )
            script.chmod(0o755)
            appspec = source / "appspec.yml"
            appspec.write_text(
                appspec.read_text()
                + "  AfterAllowTraffic:\n"
                + "    - location: scripts/after_allow.sh\n      timeout: 30\n"
            )
        return self.app.deploy(
            self.app.push(source),
            config,
            "--file-exists-behavior",
            "OVERWRITE",
            "--target-instances",
            f"tagFilters=[{{Key=fleet,Value={self.idle},Type=KEY_AND_VALUE}}]",
            *flags,
        )

    def switched(self) -> None:
        """After a successful switch the replacement fleet is the group's."""
        self.retarget(self.idle)

    def serving(self, count: int = 40) -> set[str]:
        return set(sample(self.proxy.url, count))

    def expect_serving(self, version: str, fleet: str) -> None:
        assert self.serving() == {
            f"hello-web version {version} on {a.name}" for a in self.members[fleet]
        }
