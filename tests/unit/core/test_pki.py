"""The built-in certificate authority: created once, private, and issuing certificates that
chain to it for the names a server answers to."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from cryptography import x509

from services.core.pki import CA_CERT, CA_KEY, server_names, server_tls


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
