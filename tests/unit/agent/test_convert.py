"""A command from the wire read into the agent's own types (agent/convert.py), and what a hook
learns of its revision from them (CodeDeploy's BUNDLE_* variables)."""

from __future__ import annotations

from agent.convert import command_from_proto, revision_from_proto
from agent.spec import DeploymentSpec, EventCommand, GitCommit, Revision, S3Object
from deploy.v1 import agent_pb2, common_pb2

DIGEST = "sha256:" + "a" * 64


def test_a_command_is_read_with_its_deployment() -> None:
    message = agent_pb2.LifecycleCommand(
        command_id="c-2",
        lifecycle_event="Install",
        after_command_id="c-1",
        spec=agent_pb2.DeploymentSpec(
            deployment_id="d-1",
            application_name="shop",
            deployment_group_name="web",
            deployment_group_id="g-1",
            revision=common_pb2.RevisionLocation(
                revision_type=common_pb2.REVISION_TYPE_REGISTRY,
                registry_location=common_pb2.RegistryLocation(
                    digest=DIGEST, bundle_type=common_pb2.BUNDLE_TYPE_TGZ
                ),
            ),
            file_exists_behavior=common_pb2.FILE_EXISTS_BEHAVIOR_RETAIN,
            ignore_application_stop_failures=True,
            lifecycle_events=["DownloadBundle", "Install"],
            fetch_through_registry=True,
        ),
    )
    assert command_from_proto(message) == EventCommand(
        "c-2",
        "Install",
        DeploymentSpec(
            deployment_id="d-1",
            application_name="shop",
            group_name="web",
            group_id="g-1",
            revision=Revision(DIGEST, "tgz"),
            file_exists_behavior="RETAIN",
            ignore_application_stop_failures=True,
            lifecycle_events=("DownloadBundle", "Install"),
            fetch_through_registry=True,
        ),
        after_command_id="c-1",
    )


def test_an_unset_file_exists_behavior_is_none() -> None:
    spec = command_from_proto(agent_pb2.LifecycleCommand(spec=agent_pb2.DeploymentSpec())).spec
    assert spec.file_exists_behavior is None
    assert spec.installs  # no event list: every event counts, DownloadBundle among them


def test_an_s3_revision_gives_its_object_to_hooks() -> None:
    revision = revision_from_proto(
        common_pb2.RevisionLocation(
            revision_type=common_pb2.REVISION_TYPE_S3,
            s3_location=common_pb2.S3Location(
                bucket="b", key="app.tar", bundle_type=common_pb2.BUNDLE_TYPE_TAR, etag="e1",
                digest=DIGEST,
            ),
        )
    )  # fmt: skip
    assert revision == Revision(DIGEST, "tar", s3=S3Object("b", "app.tar", "", "e1"))
    assert revision.variables() == {
        "BUNDLE_BUCKET": "b",
        "BUNDLE_KEY": "app.tar",
        "BUNDLE_ETAG": "e1",
    }  # no version: unset, not empty


def test_a_git_revision_gives_its_commit_to_hooks() -> None:
    revision = revision_from_proto(
        common_pb2.RevisionLocation(
            revision_type=common_pb2.REVISION_TYPE_GITHUB,
            github_location=common_pb2.GitHubLocation(
                repository="acme/shop", commit_id="c" * 40, clone_url="https://git.example/shop"
            ),
        )
    )
    assert revision.git == GitCommit("acme/shop", "c" * 40, "https://git.example/shop")
    assert revision.variables() == {"BUNDLE_COMMIT": "c" * 40}
    assert Revision(DIGEST).variables() == {}  # the registry's: nothing to tell
