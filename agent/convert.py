"""The agent's edge: a LifecycleCommand from the wire read into the agent's own types
(agent/spec.py), so that generated protobuf types stop at the session."""

from __future__ import annotations

from agent.spec import DeploymentSpec, EventCommand, GitCommit, Revision, S3Object
from deploy.bundletypes import BUNDLE_NAMES
from deploy.v1 import agent_pb2, common_pb2

FILE_EXISTS_NAMES = {
    common_pb2.FILE_EXISTS_BEHAVIOR_DISALLOW: "DISALLOW",
    common_pb2.FILE_EXISTS_BEHAVIOR_OVERWRITE: "OVERWRITE",
    common_pb2.FILE_EXISTS_BEHAVIOR_RETAIN: "RETAIN",
}


def command_from_proto(message: agent_pb2.LifecycleCommand) -> EventCommand:
    return EventCommand(
        command_id=message.command_id,
        event=message.lifecycle_event,
        spec=spec_from_proto(message.spec),
        after_command_id=message.after_command_id,
    )


def spec_from_proto(message: agent_pb2.DeploymentSpec) -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=message.deployment_id,
        application_name=message.application_name,
        group_name=message.deployment_group_name,
        group_id=message.deployment_group_id,
        revision=revision_from_proto(message.revision),
        file_exists_behavior=FILE_EXISTS_NAMES.get(message.file_exists_behavior),
        ignore_application_stop_failures=message.ignore_application_stop_failures,
        lifecycle_events=tuple(message.lifecycle_events),
        fetch_through_registry=message.fetch_through_registry,
    )


def revision_from_proto(message: common_pb2.RevisionLocation) -> Revision:
    """An unknown bundle type reads as zip (the registry's default)."""
    if message.revision_type == common_pb2.REVISION_TYPE_S3:
        s3 = message.s3_location
        return Revision(
            s3.digest,
            BUNDLE_NAMES.get(s3.bundle_type, "zip"),
            s3=S3Object(s3.bucket, s3.key, s3.version, s3.etag),
        )
    if message.revision_type == common_pb2.REVISION_TYPE_GITHUB:
        git = message.github_location
        return Revision(
            git.digest,
            git=GitCommit(git.repository, git.commit_id, git.clone_url),
        )
    registry = message.registry_location
    return Revision(registry.digest, BUNDLE_NAMES.get(registry.bundle_type, "zip"))
