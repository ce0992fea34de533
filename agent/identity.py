"""The agent's identity: a key that never leaves the host and the certificate the fleet issued
for it, naming this instance (`<root_dir>/identity/identity.pem`, 0600: key and certificate in
one file, replaced whole, so they always match; `ca.pem`: the cluster's authority;
`command.pub`: the key lifecycle commands are signed with, pinned at enrolment).

Enrolment spends a join token on a first certificate (`deploy-agent enroll`, or `join_token` in
the configuration on first start); the agent renews it past half its life with a new key, proving
the renewal with the current one. Every call on the agent's channel is proved with it
(deploy.certproof), so the fleet takes the instance's name from the certificate. An enrolled
agent runs only commands signed for the name its certificate holds (deploy.commandsig); renewals
never change the pinned key.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID
from grpc import aio

from agent.errors import ConfigError
from deploy import commandsig
from deploy.certproof import Credential, named_by
from deploy.private import private_dir, write_private
from deploy.v1 import agent_pb2, fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)

IDENTITY = "identity.pem"
AUTHORITY = "ca.pem"
COMMAND_KEY = "command.pub"
TIMEOUT_SECONDS = 30.0


class Identity:
    """The instance's key and certificate on disk, loaded once and after each renewal."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._credential: Credential | None = None
        self._name = ""
        self._command_key: Ed25519PublicKey | None = None
        self._not_before = self._not_after = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        self._load()

    @property
    def enrolled(self) -> bool:
        return self._credential is not None

    def credential(self) -> Credential | None:
        """What proves this agent's calls (None until it has enrolled)."""
        return self._credential

    def renewal_due(self, now: datetime.datetime) -> bool:
        """Past half the certificate's life: time for a new one."""
        return self.enrolled and now >= self._not_before + (self._not_after - self._not_before) / 2

    def authority(self) -> bytes:
        """The cluster's authority as enrolment received it (PEM; empty before)."""
        try:
            return (self._directory / AUTHORITY).read_bytes()
        except FileNotFoundError:
            return b""

    def expires(self) -> datetime.datetime:
        return self._not_after

    def refusal(self, command: agent_pb2.LifecycleCommand, now: datetime.datetime) -> str | None:
        """Why this host must not run the command (None: it may). Once enrolled, only commands
        signed with the pinned key for this instance run; before, the agent trusts its
        connection (a server without authentication)."""
        if self._command_key is None:
            return None
        return commandsig.refusal(self._command_key, self._name, command, now)

    async def enrol(self, channel: aio.Channel, token: str, instance_name: str) -> str:
        """Spend a join token on this host's first certificate; the name the fleet enrolled."""
        key = ec.generate_private_key(ec.SECP256R1())
        answer = await fleet_pb2_grpc.FleetStub(channel).Enroll(
            fleet_pb2.EnrollRequest(
                join_token=token,
                instance_name=instance_name,
                certificate_request=_request(key, instance_name),
            ),
            timeout=TIMEOUT_SECONDS,
        )
        self._pin(answer.command_public_key)
        self._keep(key, answer.certificate, answer.ca_certificate)
        return str(answer.instance_name)

    async def renew(self, channel: aio.Channel, instance_name: str) -> None:
        """A new certificate for a new key, proved with the current one."""
        key = ec.generate_private_key(ec.SECP256R1())
        answer = await fleet_pb2_grpc.FleetStub(channel).RenewCertificate(
            fleet_pb2.RenewCertificateRequest(certificate_request=_request(key, instance_name)),
            timeout=TIMEOUT_SECONDS,
        )
        self._keep(key, answer.certificate, answer.ca_certificate)

    def _pin(self, command_key_pem: str) -> None:
        """Keep the key commands must be signed with (only enrolment sets it)."""
        try:
            key = commandsig.load_public_key(command_key_pem.encode())
        except ValueError as error:
            raise ConfigError(f"the fleet sent no valid command key: {error}") from None
        private_dir(self._directory)
        write_private(self._directory / COMMAND_KEY, commandsig.public_key_pem(key).encode())

    def _keep(self, key: ec.EllipticCurvePrivateKey, certificate: str, authority: str) -> None:
        private_dir(self._directory)
        write_private(self._directory / AUTHORITY, authority.encode())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(self._directory / IDENTITY, pem + certificate.encode())
        self._load()

    def _load(self) -> None:
        path = self._directory / IDENTITY
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            return
        try:
            key = serialization.load_pem_private_key(pem, password=None)
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as error:
            raise ConfigError(f"{path}: {error} (enrol again with a new join token)") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{path} does not hold an EC key")
        pinned = self._directory / COMMAND_KEY
        try:
            self._command_key = commandsig.load_public_key(pinned.read_bytes())
        except (OSError, ValueError) as error:
            raise ConfigError(f"{pinned}: {error} (enrol again with a new join token)") from None
        names = named_by(certificate).named("instance")
        self._name = names.pop() if len(names) == 1 else ""  # "": no command verifies
        self._credential = Credential(key, certificate.public_bytes(serialization.Encoding.DER))
        self._not_before = certificate.not_valid_before_utc
        self._not_after = certificate.not_valid_after_utc


def _request(key: ec.EllipticCurvePrivateKey, instance_name: str) -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, instance_name[:64])])
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()
