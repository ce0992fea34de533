"""Certificate proofs: a service's certificate from the cluster's authority proves its calls;
another authority's, an expired one, a changed request or another method do not."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from deploy import certproof, signing
from services.core.pki import service_identity

METHOD = "/deploy.v1.Fleet/DispatchCommand"
BODY = signing.payload_hash(b"request")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_a_proof_names_the_services_of_its_certificate(tmp_path: Path) -> None:
    identity = service_identity(tmp_path / "pki", ("orchestrator", "traffic"))
    metadata = dict(certproof.prove(identity.key, identity.certificate_der, METHOD, BODY, now()))
    holder = certproof.check(metadata, identity.authority, METHOD, BODY, now())
    assert holder.named("service") == {"orchestrator", "traffic"}
    assert holder.named("instance") == set()
    assert certproof.check(metadata, identity.authority, METHOD, None, now()).identities


def test_the_same_directory_gives_the_same_authority_and_one_identity_per_start(
    tmp_path: Path,
) -> None:
    first = service_identity(tmp_path / "pki", ("fleet",))
    assert service_identity(tmp_path / "pki", ("fleet",)) is first
    other = service_identity(tmp_path / "pki", ("registry",))
    assert other.authority == first.authority and other.certificate_der != first.certificate_der


@pytest.mark.parametrize(
    ("change", "wrong"),
    [
        ("method", "does not match the certificate"),
        ("body", "does not match its signed hash"),
        ("time", "more than 5 minutes"),
        ("authority", "not issued by this cluster's authority"),
        ("certificate", "does not match the certificate"),
        ("missing", "no certificate proof"),
    ],
)
def test_anything_changed_does_not_prove(tmp_path: Path, change: str, wrong: str) -> None:
    identity = service_identity(tmp_path / "pki", ("orchestrator",))
    stranger = service_identity(tmp_path / "other", ("orchestrator",))
    when = now() - datetime.timedelta(minutes=6) if change == "time" else now()
    metadata: dict[str, str | bytes] = dict(
        certproof.prove(identity.key, identity.certificate_der, METHOD, BODY, when)
    )
    method, body, authority = METHOD, BODY, identity.authority
    if change == "method":
        method = "/deploy.v1.Fleet/CancelCommands"
    elif change == "body":
        body = signing.payload_hash(b"other")
    elif change == "authority":
        authority = stranger.authority
    elif change == "certificate":  # a certificate of this authority, but not the signer's
        metadata[certproof.CERTIFICATE] = service_identity(tmp_path / "pki", ("x",)).certificate_der
    elif change == "missing":
        del metadata[certproof.PROOF]
    with pytest.raises(certproof.ProofError, match=wrong):
        certproof.check(metadata, authority, method, body, now())


def test_an_expired_certificate_proves_nothing(tmp_path: Path) -> None:
    identity = service_identity(tmp_path / "pki", ("fleet",))
    later = now() + datetime.timedelta(days=400)
    metadata = dict(certproof.prove(identity.key, identity.certificate_der, METHOD, BODY, later))
    with pytest.raises(certproof.ProofError, match="expired"):
        certproof.check(metadata, identity.authority, METHOD, BODY, later)
