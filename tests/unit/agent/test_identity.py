"""The agent's identity on disk: absent before enrolment, renewed past half its life, a
corrupt file a one-line configuration error; once enrolled, only commands signed for it run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.errors import ConfigError
from agent.identity import COMMAND_KEY, IDENTITY, Identity
from deploy import commandsig
from deploy.v1 import agent_pb2
from services.core.pki import command_signing_key, instance_certificate


def enrolled(directory: Path, lifetime: timedelta) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "web-1")])
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    )
    pem, authority = instance_certificate(
        directory / "pki",
        request.public_bytes(serialization.Encoding.PEM).decode(),
        "web-1",
        lifetime,
    )
    identity = Identity(directory / "identity")
    # what enrol() does with the fleet's answer
    identity._pin(commandsig.public_key_pem(command_signing_key(directory / "pki").public_key()))
    identity._keep(key, pem, authority)
    return identity


def test_no_identity_before_enrolment(tmp_path: Path) -> None:
    identity = Identity(tmp_path / "identity")
    assert not identity.enrolled and identity.credential() is None
    assert not identity.renewal_due(datetime.now(UTC))


def test_an_enrolled_identity_is_private_and_renewed_past_half_its_life(tmp_path: Path) -> None:
    identity = enrolled(tmp_path, timedelta(hours=10))
    assert (tmp_path / "identity" / IDENTITY).stat().st_mode & 0o777 == 0o600
    reloaded, first = Identity(tmp_path / "identity").credential(), identity.credential()
    assert reloaded is not None and first is not None
    assert reloaded.certificate_der == first.certificate_der
    assert reloaded.key.public_key() == first.key.public_key()
    now = datetime.now(UTC)
    assert not identity.renewal_due(now)
    assert not identity.renewal_due(now + timedelta(hours=4))
    assert identity.renewal_due(now + timedelta(hours=6))


def test_a_corrupt_identity_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "identity").mkdir()
    (tmp_path / "identity" / IDENTITY).write_text("garbage")
    with pytest.raises(ConfigError, match="enrol again"):
        Identity(tmp_path / "identity")


def test_before_enrolment_any_command_runs_after_it_only_commands_signed_for_it(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    command = agent_pb2.LifecycleCommand(command_id="c-1", lifecycle_event="Install")
    assert Identity(tmp_path / "identity").refusal(command, now) is None
    identity = enrolled(tmp_path, timedelta(hours=10))
    assert identity.refusal(command, now) == "the command is not signed"
    key = command_signing_key(tmp_path / "pki")
    commandsig.sign(key, "web-2", command, now)
    assert identity.refusal(command, now) is not None  # signed for another instance
    commandsig.sign(key, "web-1", command, now)
    assert identity.refusal(command, now) is None
    assert Identity(tmp_path / "identity").refusal(command, now) is None  # pinned on disk


def test_an_identity_without_its_pinned_key_is_a_configuration_error(tmp_path: Path) -> None:
    enrolled(tmp_path, timedelta(hours=10))
    (tmp_path / "identity" / COMMAND_KEY).unlink()
    with pytest.raises(ConfigError, match=r"command\.pub.*enrol again"):
        Identity(tmp_path / "identity")
