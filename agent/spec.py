"""What the agent is asked to run, in its own types: a lifecycle event of a deployment
(`EventCommand`), the deployment (`DeploymentSpec`) and where its revision is (`Revision`).
The session reads each command from the wire into these (agent/convert.py); everything past it
— running events, fetching bundles, `deploy-agent local` — works on them alone."""

from __future__ import annotations

from dataclasses import dataclass

from deploy.lifecycle import LifecycleEvent


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    version: str = ""
    etag: str = ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class GitCommit:
    repository: str
    """"account/repo" under the registry's base URL, or a clone URL."""
    commit_id: str
    clone_url: str = ""
    """The URL the registry fetched it from (what a host fetching it itself uses)."""


@dataclass(frozen=True)
class Revision:
    """A revision in the registry, in S3 (`s3`) or in Git (`git`)."""

    digest: str = ""
    """"sha256:<64 hex>" of the bundle as registered: every host checks it (a Git commit
    fetched directly is checked by Git, the zip made of it may differ in bytes)."""
    bundle_kind: str = "zip"
    """zip, tar or tgz."""
    s3: S3Object | None = None
    git: GitCommit | None = None

    def variables(self) -> dict[str, str]:
        """CodeDeploy's BUNDLE_* variables for hooks: the S3 object or the Git commit (empty
        values unset)."""
        values: dict[str, str] = {}
        if self.s3 is not None:
            values = {
                "BUNDLE_BUCKET": self.s3.bucket,
                "BUNDLE_KEY": self.s3.key,
                "BUNDLE_VERSION": self.s3.version,
                "BUNDLE_ETAG": self.s3.etag,
            }
        elif self.git is not None:
            values = {"BUNDLE_COMMIT": self.git.commit_id}
        return {name: value for name, value in values.items() if value}


@dataclass(frozen=True)
class DeploymentSpec:
    deployment_id: str
    application_name: str
    group_name: str
    group_id: str
    revision: Revision = Revision()
    """(`deploy-agent local`: none, the bundle is given on the command line.)"""
    file_exists_behavior: str | None = None
    """DISALLOW, OVERWRITE or RETAIN; None: the appspec's, else DISALLOW."""
    ignore_application_stop_failures: bool = False
    lifecycle_events: tuple[str, ...] = ()
    """Every event this deployment runs on the host, in order: a hook script missing from the
    bundle fails DownloadBundle for these and is only a warning for the others (empty: not
    known, every event counts)."""
    fetch_through_registry: bool = False
    """Download the bundle from the registry (by its digest) even when it lives elsewhere."""

    @property
    def installs(self) -> bool:
        """Whether this deployment brings a revision to the host (a blue/green original's
        block traffic or a rollback of it does not)."""
        return LifecycleEvent.DOWNLOAD_BUNDLE in self.lifecycle_events or not self.lifecycle_events

    @property
    def checked_events(self) -> list[str] | None:
        """The events whose hooks must exist in the bundle (None: all)."""
        return list(self.lifecycle_events) or None


@dataclass(frozen=True)
class EventCommand:
    """Run one lifecycle event of a deployment on this host."""

    command_id: str
    event: str
    spec: DeploymentSpec
    after_command_id: str = ""
    """Run only once this command (the event before, in the same chain) has passed here."""
