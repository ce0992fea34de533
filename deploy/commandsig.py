"""Signed lifecycle commands (CodeDeploy's signed deployment specification), pure.

The orchestrator signs each command for the one instance it is meant for, with an Ed25519 key
of the cluster (`pki_dir/command.key`); an agent pins the public key when it enrols and runs
only commands whose signature verifies for its own name and has not expired — so neither a
compromised fleet process nor anybody between the services and the host can make a host run
anything, alter what it runs, or replay one host's command on another.

What is signed: a context string, the instance's name and the command serialized
(deterministically) without its signature; the expiry is a field of the command, so it is
signed too.
"""

from __future__ import annotations

import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deploy.v1 import agent_pb2

CONTEXT = b"opendeploy-lifecycle-command-v1\x00"
LIFETIME = datetime.timedelta(hours=24)
"""How long a signed command may wait before its agent runs it: commands are signed when they
are dispatched, and the fleet fails one its agent does not take within minutes; a day bounds
how long a captured command could be replayed to its own host."""


def sign(
    key: Ed25519PrivateKey,
    instance_name: str,
    command: agent_pb2.LifecycleCommand,
    now: datetime.datetime,
) -> None:
    """Give the command its expiry and its signature for `instance_name` (in place)."""
    command.ClearField("signature")
    command.signature_expires.FromDatetime(now + LIFETIME)
    command.signature = key.sign(_signed_bytes(instance_name, command))


def refusal(
    key: Ed25519PublicKey,
    instance_name: str,
    command: agent_pb2.LifecycleCommand,
    now: datetime.datetime,
) -> str | None:
    """Why an agent named `instance_name` must not run the command; None when it may."""
    if not command.signature:
        return "the command is not signed"
    unsigned = agent_pb2.LifecycleCommand()
    unsigned.CopyFrom(command)
    unsigned.ClearField("signature")
    try:
        key.verify(command.signature, _signed_bytes(instance_name, unsigned))
    except InvalidSignature:
        return (
            "the command's signature does not verify with the key pinned at enrolment "
            "(it was altered, forged, or signed for another instance)"
        )
    expires = command.signature_expires.ToDatetime(tzinfo=datetime.UTC)
    if now > expires:
        return f"the command's signature expired at {expires.isoformat()}"
    return None


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """ValueError unless `pem` is an Ed25519 public key."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _signed_bytes(instance_name: str, unsigned: agent_pb2.LifecycleCommand) -> bytes:
    # Instance names hold no NUL (they are checked on registration): the parts cannot run
    # into each other.
    return (
        CONTEXT + instance_name.encode() + b"\x00" + unsigned.SerializeToString(deterministic=True)
    )
