"""Where things live under the agent's root directory (CodeDeploy's deployment-root layout).

The root and every directory the agent makes in it are 0700: bundles may hold secrets, and
nobody but the agent may change a script it will run as root. Identifiers from the server are
checked against their forms before they name a directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ErrorCode, EventFailed
from deploy.private import private_dir

DEPLOYMENT_ID = re.compile(r"^d-[A-Z0-9]{1,32}\Z")
"""d- and upper-case letters or digits (the server makes nine, local runs a few more)."""
GROUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
"""A deployment group id (a UUID from the server, a name in local mode): never / or .."""
RESERVED = frozenset({"deployment-instructions", "bundle-cache", "git-cache", "ongoing-deployment"})
"""Names of the root's own directories, which no group id may take."""


def checked_group_id(group_id: str) -> str:
    """The id if it is of its form (so it can only name its own directory), else EventFailed."""
    if not GROUP_ID.match(group_id) or group_id in RESERVED:
        raise EventFailed(
            ErrorCode.UNKNOWN_ERROR, f"deploymentGroupId {group_id[:100]!r} is not a group id"
        )
    return group_id


def checked_deployment_id(deployment_id: str) -> str:
    if not DEPLOYMENT_ID.match(deployment_id):
        raise EventFailed(
            ErrorCode.UNKNOWN_ERROR,
            f"deploymentId {deployment_id[:100]!r} is not a deployment id",
        )
    return deployment_id


@dataclass(frozen=True)
class DeploymentRoot:
    """root/<group-id>/<deployment-id>/{bundle, deployment-archive, logs/scripts.log},
    root/deployment-instructions/<group-id>{-cleanup,_last_successful_install},
    root/ongoing-deployment/journal (the commands started and their reports)."""

    root: Path

    def deployment_dir(self, group_id: str, deployment_id: str) -> Path:
        return self.root / checked_group_id(group_id) / checked_deployment_id(deployment_id)

    def make_deployment_dir(self, group_id: str, deployment_id: str) -> Path:
        """The deployment's directory, with the root and group directories, all 0700."""
        directory = self.deployment_dir(group_id, deployment_id)
        private_dir(self.root)
        private_dir(directory.parent)
        return private_dir(directory)

    def archive(self, group_id: str, deployment_id: str) -> Path:
        return self.deployment_dir(group_id, deployment_id) / "deployment-archive"

    def bundle_ready(self, group_id: str, deployment_id: str) -> Path:
        """Exists once the deployment's revision is unpacked and checked."""
        return self.deployment_dir(group_id, deployment_id) / "bundle-ready"

    def bundle_file(self, group_id: str, deployment_id: str) -> Path:
        return self.deployment_dir(group_id, deployment_id) / "bundle"

    def script_log(self, group_id: str, deployment_id: str) -> Path:
        return self.deployment_dir(group_id, deployment_id) / "logs" / "scripts.log"

    @property
    def instructions(self) -> Path:
        return self.root / "deployment-instructions"

    def cleanup_file(self, group_id: str) -> Path:
        return self.instructions / f"{checked_group_id(group_id)}-cleanup"

    def last_successful_file(self, group_id: str) -> Path:
        return self.instructions / f"{checked_group_id(group_id)}_last_successful_install"

    @property
    def bundle_cache(self) -> Path:
        """Bundles by digest, so a revision deployed again is not downloaded again."""
        return self.root / "bundle-cache"

    @property
    def git_cache(self) -> Path:
        """Bare mirrors of the Git repositories revisions came from."""
        return self.root / "git-cache"

    @property
    def ongoing(self) -> Path:
        return self.root / "ongoing-deployment"

    def last_successful_archive(self, group_id: str) -> Path | None:
        """The archive of the last revision installed successfully in the group, if any."""
        try:
            directory = Path(self.last_successful_file(group_id).read_text().strip())
        except FileNotFoundError:
            return None
        return directory / "deployment-archive"

    def record_last_successful(self, group_id: str, deployment_id: str) -> None:
        private_dir(self.instructions)
        pointer = self.last_successful_file(group_id)
        tmp = pointer.with_suffix(".tmp")
        tmp.write_text(str(self.deployment_dir(group_id, deployment_id)))
        tmp.replace(pointer)
