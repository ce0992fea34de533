"""Signed lifecycle commands: a command runs only as signed, on the instance it was signed
for, before it expires, and only under the pinned key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy import commandsig
from deploy.v1 import agent_pb2, common_pb2

KEY = Ed25519PrivateKey.generate()


def signed(now: datetime, instance: str = "web-1") -> agent_pb2.LifecycleCommand:
    command = agent_pb2.LifecycleCommand(
        command_id="d-1:web-1:Install",
        lifecycle_event="Install",
        spec=agent_pb2.DeploymentSpec(
            deployment_id="d-1",
            application_name="app",
            deployment_group_name="prod",
            revision=common_pb2.RevisionLocation(),
            lifecycle_events=["DownloadBundle", "Install"],
        ),
    )
    commandsig.sign(KEY, instance, command, now)
    return command


def test_a_signed_command_passes_for_its_instance_and_survives_the_wire() -> None:
    now = datetime.now(UTC)
    command = agent_pb2.LifecycleCommand.FromString(signed(now).SerializeToString())
    assert commandsig.refusal(KEY.public_key(), "web-1", command, now) is None
    assert command.signature_expires.ToDatetime(tzinfo=UTC) == now + commandsig.LIFETIME


def alter_event(c: agent_pb2.LifecycleCommand) -> None:
    c.lifecycle_event = "ApplicationStart"


def alter_deployment(c: agent_pb2.LifecycleCommand) -> None:
    c.spec.deployment_id = "d-2"


def add_event(c: agent_pb2.LifecycleCommand) -> None:
    c.spec.lifecycle_events.append("AfterInstall")


def extend_expiry(c: agent_pb2.LifecycleCommand) -> None:
    c.signature_expires.seconds += 86_400


def flip_a_signature_bit(c: agent_pb2.LifecycleCommand) -> None:
    c.signature = bytes([c.signature[0] ^ 1]) + c.signature[1:]


@pytest.mark.parametrize(
    "tamper", [alter_event, alter_deployment, add_event, extend_expiry, flip_a_signature_bit]
)
def test_any_change_to_a_signed_command_is_refused(
    tamper: Callable[[agent_pb2.LifecycleCommand], None],
) -> None:
    now = datetime.now(UTC)
    command = signed(now)
    tamper(command)
    reason = commandsig.refusal(KEY.public_key(), "web-1", command, now)
    assert reason is not None and "does not verify" in reason


def test_a_command_signed_for_another_instance_or_with_another_key_is_refused() -> None:
    now = datetime.now(UTC)
    assert commandsig.refusal(KEY.public_key(), "web-2", signed(now, "web-1"), now)
    other = Ed25519PrivateKey.generate().public_key()
    assert commandsig.refusal(other, "web-1", signed(now), now)


def test_an_unsigned_command_is_refused() -> None:
    now = datetime.now(UTC)
    command = signed(now)
    command.ClearField("signature")
    assert commandsig.refusal(KEY.public_key(), "web-1", command, now) == (
        "the command is not signed"
    )


def test_an_expired_command_is_refused() -> None:
    signed_at = datetime.now(UTC)
    later = signed_at + commandsig.LIFETIME + timedelta(seconds=1)
    reason = commandsig.refusal(KEY.public_key(), "web-1", signed(signed_at), later)
    assert reason is not None and "expired" in reason


def test_a_public_key_round_trips_and_other_keys_are_refused() -> None:
    pem = commandsig.public_key_pem(KEY.public_key())
    assert commandsig.load_public_key(pem.encode()) == KEY.public_key()
    with pytest.raises(ValueError):
        commandsig.load_public_key(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
