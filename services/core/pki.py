"""OpenDeploy's own certificate authority, built on `cryptography` (no hand-rolled crypto).

Created on first start in `pki_dir` (the data directory's `pki/` by default): `ca.key` (0600)
and `ca.pem`, the certificate clients trust (`--ca-file`, DEPLOY_CA_FILE, the agent's
`ca_file`). Processes that share the directory share the authority; the first one creates it
under a lock. Each server process gets a fresh certificate for the names it answers to at every
start, kept in memory only.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deploy.certproof import URI_PREFIX, Credential
from deploy.commandsig import load_public_key
from deploy.private import private_dir, private_file, write_private
from services.core.errors import InvalidArgument

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SEALING_KEY = "identity.key"
COMMAND_KEY = "command.key"
COMMAND_PUBLIC_KEY = "command.pub"
CA_YEARS = 10
SERVER_DAYS = 397
"""A server certificate's life (the longest browsers accept); a restart issues a new one."""
ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")


@dataclass(frozen=True)
class ServerTls:
    """What a TLS listener needs, PEM-encoded."""

    ca_path: Path
    ca: bytes
    key: bytes
    certificate: bytes


AuthorityKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""OpenDeploy makes ECDSA authorities; an operator's own may be RSA."""


@dataclass(frozen=True)
class _Authority:
    key: AuthorityKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class ServiceIdentity:
    """A process's proof of which services it runs (deploy.certproof), and the authority it
    checks other holders' certificates against."""

    key: ec.EllipticCurvePrivateKey
    certificate_der: bytes
    authority: x509.Certificate

    @property
    def credential(self) -> Credential:
        return Credential(self.key, self.certificate_der)


def server_tls(directory: Path, listen: str) -> ServerTls:
    """The authority in `directory` (created if absent) and a certificate for the names a
    server listening on `listen` (host:port) answers to."""
    authority = _load_or_create(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _issue(
        authority,
        key.public_key(),
        "opendeploy-server",
        list(_general_names(server_names(listen))),
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    return ServerTls(
        ca_path=directory / CA_CERT,
        ca=authority.certificate.public_bytes(serialization.Encoding.PEM),
        key=_key_pem(key),
        certificate=certificate.public_bytes(serialization.Encoding.PEM),
    )


@lru_cache(maxsize=8)
def service_identity(directory: Path, services: tuple[str, ...]) -> ServiceIdentity:
    """A certificate naming the services this process runs (urn:opendeploy:service:NAME),
    issued by the authority in `directory` (created if absent) once per process start (the
    server asks first, off the event loop; its peer channels then find it here), kept in
    memory."""
    authority = _load_or_create(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.UniformResourceIdentifier(f"{URI_PREFIX}service:{s}") for s in services]
    certificate = _issue(
        authority, key.public_key(), "opendeploy-service", names, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return ServiceIdentity(
        key, certificate.public_bytes(serialization.Encoding.DER), authority.certificate
    )


def instance_certificate(
    directory: Path, request_pem: str, instance: str, lifetime: datetime.timedelta
) -> tuple[str, str]:
    """A client certificate naming `instance` (urn:opendeploy:instance:NAME) for the key of a
    PEM certificate request, and the authority's certificate, both PEM. Only the request's key
    is used (its subject is the host's wish, not its name). InvalidArgument names a request
    that is not a well-signed ECDSA P-256 one."""
    public_key = requested_key(request_pem)
    authority = _load_or_create(directory)
    names = [x509.UniformResourceIdentifier(f"{URI_PREFIX}instance:{instance}")]
    certificate = _issue(
        authority,
        public_key,
        "opendeploy-instance",
        names,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        lifetime,
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        authority.certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )


def requested_key(request_pem: str) -> ec.EllipticCurvePublicKey:
    """The key of a PEM certificate request signed by it; InvalidArgument names what is not."""
    try:
        request = x509.load_pem_x509_csr(request_pem.encode())
    except ValueError:
        raise InvalidArgument("certificateRequest is not a PEM certificate request") from None
    public_key = request.public_key()
    if not request.is_signature_valid:
        raise InvalidArgument("certificateRequest is not signed by its key")
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != (
        "secp256r1"
    ):
        raise InvalidArgument("certificateRequest must be for an ECDSA P-256 key")
    return public_key


def command_signing_key(directory: Path) -> Ed25519PrivateKey:
    """The key the orchestrator signs lifecycle commands with (deploy.commandsig): `command.key`
    (0600) beside the authority, created with `command.pub` when absent."""
    private_dir(directory)
    with _locked(directory / ".lock"):
        path = directory / COMMAND_KEY
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, Ed25519PrivateKey), f"{path}: not an Ed25519 key"
            return key
        key = Ed25519PrivateKey.generate()
        write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        write_private(
            directory / COMMAND_PUBLIC_KEY,
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        return key


def sealing_key(directory: Path, legacy: Path) -> bytes:
    """The 256-bit key access key secrets are sealed with (services.identity.sealing):
    `identity.key` (0600) beside the authority, so that every process of a cluster opens what
    another sealed; created when absent (or moved from `legacy`, where it used to live)."""
    private_dir(directory)
    with _locked(directory / ".lock"):
        path = directory / SEALING_KEY
        if not path.exists() and legacy.exists():
            write_private(path, legacy.read_bytes())
            legacy.unlink()
        if not path.exists():
            write_private(path, os.urandom(32))
        return path.read_bytes()


def command_public_key(directory: Path) -> Ed25519PublicKey:
    """The key agents pin at enrolment: `command.pub` alone is enough (a fleet on another
    machine need not hold the private half); created with it when absent."""
    path = directory / COMMAND_PUBLIC_KEY
    if not path.exists():
        return command_signing_key(directory).public_key()
    try:
        return load_public_key(path.read_bytes())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def server_names(listen: str) -> list[str]:
    """The host of `listen` (all of this machine's names when it listens everywhere), plus
    loopback."""
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else listen
    names = ["localhost", "127.0.0.1", "::1"]
    if host in ANY_ADDRESS:
        names.append(socket.gethostname())
    elif host not in names:
        names.append(host)
    return names


def _load_or_create(directory: Path) -> _Authority:
    private_dir(directory)
    with _locked(directory / ".lock"):
        key_path, cert_path = directory / CA_KEY, directory / CA_CERT
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, AuthorityKey):
                raise InvalidArgument(f"{key_path}: an authority's key must be ECDSA or RSA")
            return _Authority(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        authority = _new_authority()
        write_private(key_path, _key_pem(authority.key))
        write_private(cert_path, authority.certificate.public_bytes(serialization.Encoding.PEM))
        return authority


def _new_authority() -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenDeploy CA")])
    certificate = (
        _builder(name, name, key.public_key(), datetime.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Authority(key, certificate)


def _issue(
    authority: _Authority,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    names: Sequence[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    lifetime: datetime.timedelta = datetime.timedelta(days=SERVER_DAYS),
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        _builder(subject, authority.certificate.subject, public_key, lifetime)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    lifetime: datetime.timedelta,
) -> x509.CertificateBuilder:
    """A certificate valid for `lifetime`, from a little before now (clocks differ a little:
    five minutes, or a tenth of a short lifetime)."""
    now = datetime.datetime.now(datetime.UTC)
    backdate = min(datetime.timedelta(minutes=5), lifetime / 10)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + lifetime)
    )


def _key_pem(key: AuthorityKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _general_names(names: Sequence[str]) -> Iterator[x509.GeneralName]:
    for name in dict.fromkeys(names):
        try:
            yield x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            yield x509.DNSName(name)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes sharing the directory."""
    with private_file(path).open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
