"""The built-in certificate authority: created once, private, and issuing certificates that
chain to it for the names a server answers to."""

from __future__ import annotations

import datetime
import ipaddress
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from deploy.certproof import verify_certificate
from services.core.errors import InvalidArgument
from services.core.pki import CA_CERT, CA_KEY, server_names, server_tls, service_identity


def test_the_authority_is_created_once_with_a_private_key(tmp_path: Path) -> None:
    first = server_tls(tmp_path / "pki", "127.0.0.1:7400")
    second = server_tls(tmp_path / "pki", "127.0.0.1:7401")
    assert first.ca == second.ca == (tmp_path / "pki" / CA_CERT).read_bytes()
    assert first.ca_path == tmp_path / "pki" / CA_CERT
    assert (tmp_path / "pki" / CA_KEY).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pki").stat().st_mode & 0o777 == 0o700
    assert first.certificate != second.certificate  # each start gets its own


def test_a_server_certificate_chains_to_the_authority_and_names_the_listen_host(
    tmp_path: Path,
) -> None:
    tls = server_tls(tmp_path, "10.1.2.3:7400")
    authority = x509.load_pem_x509_certificate(tls.ca)
    certificate = x509.load_pem_x509_certificate(tls.certificate)
    certificate.verify_directly_issued_by(authority)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = names.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.1.2.3") in addresses
    assert ipaddress.ip_address("127.0.0.1") in addresses
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert b"PRIVATE KEY" in tls.key


def test_a_server_listening_everywhere_is_named_by_this_host() -> None:
    assert socket.gethostname() in server_names("0.0.0.0:7400")
    assert server_names("[::]:7400")[-1] == socket.gethostname()
    assert server_names("deploy.example.com:7400")[-1] == "deploy.example.com"


def test_an_operators_own_rsa_authority_issues_what_the_cluster_needs(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Corp CA")])
    now = datetime.datetime.now(datetime.UTC)
    authority = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    pki = tmp_path / "pki"
    pki.mkdir()
    (pki / CA_KEY).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (pki / CA_CERT).write_bytes(authority.public_bytes(serialization.Encoding.PEM))

    server = x509.load_pem_x509_certificate(server_tls(pki, "127.0.0.1:7400").certificate)
    server.verify_directly_issued_by(authority)
    identity = service_identity(pki, ("fleet",))
    holder = verify_certificate(
        x509.load_der_x509_certificate(identity.certificate_der), authority, now
    )
    assert holder.named("service") == {"fleet"}


def test_an_authority_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    (pki / CA_KEY).write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (pki / CA_CERT).write_bytes(b"")
    with pytest.raises(InvalidArgument, match="must be ECDSA or RSA"):
        server_tls(pki, "127.0.0.1:7400")
