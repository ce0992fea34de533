"""Where a revision's bundle lives: the domain form of RevisionLocation, and its validation."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from services.core.errors import InvalidArgument

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")


class RevisionType(StrEnum):
    REGISTRY = "Registry"
    S3 = "S3"
    GITHUB = "GitHub"


class BundleType(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    TGZ = "tgz"


@dataclass(frozen=True)
class RevisionLocation:
    """One revision. Only the fields of its `revision_type` are meaningful."""

    revision_type: RevisionType
    digest: str = ""
    """"sha256:<hex>" of the bundle: a Registry revision's name; recorded at registration for
    an S3 one (not part of its identity)."""
    bundle_type: BundleType = BundleType.ZIP
    bucket: str = ""
    key: str = ""
    version: str = ""
    etag: str = ""
    repository: str = ""
    commit_id: str = ""
    clone_url: str = ""
    """Git: where `repository` was fetched from, resolved at registration."""

    def identity(self) -> str:
        """A stable string that names this revision within an application."""
        if self.revision_type is RevisionType.REGISTRY:
            return f"registry:{self.digest}:{self.bundle_type}"
        if self.revision_type is RevisionType.S3:
            return f"s3://{self.bucket}/{self.key}?version={self.version}&etag={self.etag}"
        return f"github:{self.repository}@{self.commit_id}"


def check_revision(revision: RevisionLocation) -> RevisionLocation:
    """Validate the fields of the revision's type; raise InvalidArgument naming the field."""
    if revision.revision_type is RevisionType.REGISTRY:
        if not DIGEST.match(revision.digest):
            raise InvalidArgument(
                f"revision.registryLocation.digest {revision.digest!r} is invalid: "
                "expected sha256:<64 lowercase hex digits>"
            )
        return revision
    if revision.revision_type is RevisionType.S3:
        if not revision.bucket or not revision.key:
            raise InvalidArgument("revision.s3Location needs bucket and key")
        return revision
    if not revision.repository or not revision.commit_id:
        raise InvalidArgument("revision.gitHubLocation needs repository and commitId")
    return revision


def revision_to_json(revision: RevisionLocation) -> dict[str, Any]:
    """The stored form of a revision (a service's own column; field names are the domain's)."""
    return dataclasses.asdict(revision)


def revision_from_json(raw: dict[str, Any]) -> RevisionLocation:
    fields = dict(raw)
    fields["revision_type"] = RevisionType(fields["revision_type"])
    fields["bundle_type"] = BundleType(fields["bundle_type"])
    return RevisionLocation(**fields)
