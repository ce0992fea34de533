"""Where things live under the agent's root directory (CodeDeploy's deployment-root layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeploymentRoot:
    """root/<group-id>/<deployment-id>/{bundle, deployment-archive, logs/scripts.log},
    root/deployment-instructions/<group-id>{-cleanup,_last_successful_install},
    root/ongoing-deployment/<command> while a command runs."""

    root: Path

    def deployment_dir(self, group_id: str, deployment_id: str) -> Path:
        return self.root / group_id / deployment_id

    def archive(self, group_id: str, deployment_id: str) -> Path:
        return self.deployment_dir(group_id, deployment_id) / "deployment-archive"

    def bundle_file(self, group_id: str, deployment_id: str) -> Path:
        return self.deployment_dir(group_id, deployment_id) / "bundle"

    def script_log(self, group_id: str, deployment_id: str) -> Path:
        return self.deployment_dir(group_id, deployment_id) / "logs" / "scripts.log"

    @property
    def instructions(self) -> Path:
        return self.root / "deployment-instructions"

    def cleanup_file(self, group_id: str) -> Path:
        return self.instructions / f"{group_id}-cleanup"

    def last_successful_file(self, group_id: str) -> Path:
        return self.instructions / f"{group_id}_last_successful_install"

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
        self.instructions.mkdir(parents=True, exist_ok=True)
        pointer = self.last_successful_file(group_id)
        tmp = pointer.with_suffix(".tmp")
        tmp.write_text(str(self.deployment_dir(group_id, deployment_id)))
        tmp.replace(pointer)
