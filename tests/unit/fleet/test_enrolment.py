"""Join tokens and instance certificates: bounded, hashed, naming the instance they are for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from deploy import certproof
from services.core.errors import InvalidArgument
from services.core.pki import instance_certificate
from services.core.tags import Tag
from services.fleet.enrolment import MAX_LIFETIME, new_token, token_digest

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def request_for(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "anything")])
    built = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.PEM).decode()


def test_a_token_is_random_kept_as_its_hash_and_lives_an_hour_by_default() -> None:
    token = new_token("web-1", (), 0, 0, NOW)
    other = new_token("web-1", (), 0, 0, NOW)
    assert token.text.startswith("odjt_") and token.text != other.text
    assert token.digest == token_digest(token.text) and token.text not in token.digest
    assert token.uses == 1 and token.expires_at == NOW + timedelta(hours=1)
    tagged = new_token(None, (Tag("pool", "green"),), 5, 600, NOW)
    assert tagged.uses == 5 and tagged.expires_at == NOW + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("uses", "seconds", "names"),
    [(1001, 0, "maxUses"), (1, int(MAX_LIFETIME.total_seconds()) + 1, "expiresInSeconds")],
)
def test_token_bounds_are_named(uses: int, seconds: int, names: str) -> None:
    with pytest.raises(InvalidArgument, match=names):
        new_token(None, (), uses, seconds, NOW)


def test_an_instance_certificate_names_the_instance_not_the_request(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem, authority_pem = instance_certificate(
        tmp_path, request_for(key), "web-1", timedelta(hours=1)
    )
    certificate = x509.load_pem_x509_certificate(pem.encode())
    authority = x509.load_pem_x509_certificate(authority_pem.encode())
    holder = certproof.verify_certificate(certificate, authority, datetime.now(UTC))
    assert holder.named("instance") == {"web-1"} and holder.named("service") == set()
    assert certificate.public_key() == key.public_key()
    life = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert timedelta(hours=1) <= life <= timedelta(hours=1, minutes=6)


@pytest.mark.parametrize(
    ("request_pem", "names"),
    [
        ("not a request", "not a PEM certificate request"),
        (request_for(rsa.generate_private_key(65537, 2048)), "ECDSA P-256"),
        (request_for(ec.generate_private_key(ec.SECP384R1())), "ECDSA P-256"),
    ],
)
def test_a_bad_request_is_refused(tmp_path: Path, request_pem: str, names: str) -> None:
    with pytest.raises(InvalidArgument, match=names):
        instance_certificate(tmp_path, request_pem, "web-1", timedelta(hours=1))


def test_an_instance_name_of_the_longest_form_is_named(tmp_path: Path) -> None:
    name = "i" * 100  # longer than a common name may be: the identity is the URI
    key = ec.generate_private_key(ec.SECP256R1())
    pem, authority = instance_certificate(tmp_path, request_for(key), name, timedelta(hours=1))
    holder = certproof.verify_certificate(
        x509.load_pem_x509_certificate(pem.encode()),
        x509.load_pem_x509_certificate(authority.encode()),
        datetime.now(UTC),
    )
    assert holder.named("instance") == {name}
