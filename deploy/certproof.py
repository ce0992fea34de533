"""Calls that prove who makes them with a certificate of OpenDeploy's authority.

A caller that holds a certificate issued by the cluster's authority (a service, an enrolled
agent) sends it with each call, with the time, the request's hash and a signature over the
method, the time and that hash made with the certificate's private key. The receiver checks the
certificate chains to its authority and is valid now, and the signature — so the identity comes
from the certificate, never from a message, and the proof travels in gRPC metadata (through the
local cluster's HTTP/2 front door as well; gRPC Python cannot ask for optional client
certificates in the TLS handshake, which users' access keys would need).

Shared by services and agents: pure functions on `cryptography`, and the client interceptors
that add a proof to every call of a channel.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from grpc import aio

from deploy import signing

CERTIFICATE = "x-deploy-certificate-bin"
PROOF = "x-deploy-proof-bin"
URI_PREFIX = "urn:opendeploy:"
"""Identities are URIs in the certificate's subject alternative names: urn:opendeploy:service:
fleet, urn:opendeploy:instance:web-1."""


@dataclass(frozen=True)
class Credential:
    """What proves calls: a key and the certificate (DER) issued for it."""

    key: ec.EllipticCurvePrivateKey
    certificate_der: bytes


class ProofError(ValueError):
    """The certificate or its proof does not hold; the message says what."""


@dataclass(frozen=True)
class Holder:
    """What a call proves: the identities its certificate names."""

    identities: frozenset[str]

    def named(self, kind: str) -> set[str]:
        """The names of one kind (`service`, `instance`)."""
        prefix = f"{kind}:"
        return {i.removeprefix(prefix) for i in self.identities if i.startswith(prefix)}


def prove(
    key: ec.EllipticCurvePrivateKey,
    certificate_der: bytes,
    method: str,
    body_hash: str,
    now: datetime.datetime,
) -> list[tuple[str, str | bytes]]:
    """The metadata proving one call of `method` by the certificate's holder."""
    stamp = now.astimezone(datetime.UTC).strftime(signing.STAMP_FORMAT)
    signature = key.sign(_message(method, stamp, body_hash), ec.ECDSA(hashes.SHA256()))
    return [
        (CERTIFICATE, certificate_der),
        (PROOF, signature),
        (signing.DATE, stamp),
        (signing.CONTENT_SHA256, body_hash),
    ]


def check(
    metadata: Mapping[str, str | bytes],
    authority: x509.Certificate,
    method: str,
    body_hash: str | None,
    now: datetime.datetime,
) -> Holder:
    """Who proved this call (ProofError when nothing holds). `body_hash` None: a client stream,
    whose messages are not known when the call starts."""
    der, proof = metadata.get(CERTIFICATE), metadata.get(PROOF)
    stamp, claimed = metadata.get(signing.DATE), metadata.get(signing.CONTENT_SHA256)
    if not isinstance(der, bytes) or not isinstance(proof, bytes):
        raise ProofError("no certificate proof")
    if not isinstance(stamp, str) or not isinstance(claimed, str):
        raise ProofError(f"the proof needs {signing.DATE} and {signing.CONTENT_SHA256}")
    if body_hash is not None and claimed != body_hash:
        raise ProofError("the request does not match its signed hash")
    try:
        when = datetime.datetime.strptime(stamp, signing.STAMP_FORMAT).replace(tzinfo=datetime.UTC)
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise ProofError("the certificate or the time cannot be read") from None
    if abs(now - when) > signing.MAX_SKEW:
        raise ProofError("the proof's time is more than 5 minutes from the server's clock")
    holder = verify_certificate(certificate, authority, now)
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ProofError("the certificate's key is not an EC key")
    try:
        public_key.verify(proof, _message(method, stamp, claimed), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ProofError("the proof does not match the certificate") from None
    return holder


def verify_certificate(
    certificate: x509.Certificate, authority: x509.Certificate, now: datetime.datetime
) -> Holder:
    """The identities of a certificate issued by `authority` and valid at `now`."""
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        raise ProofError("the certificate was not issued by this cluster's authority") from None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ProofError("the certificate has expired or is not valid yet")
    holder = named_by(certificate)
    if not holder.identities:
        raise ProofError("the certificate names no OpenDeploy identity")
    return holder


def named_by(certificate: x509.Certificate) -> Holder:
    """The OpenDeploy identities a certificate names (its urn:opendeploy: URIs), unchecked."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return Holder(frozenset())
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    return Holder(frozenset(u.removeprefix(URI_PREFIX) for u in uris if u.startswith(URI_PREFIX)))


def _message(method: str, stamp: str, body_hash: str) -> bytes:
    return hashlib.sha256("\n".join([method, stamp, body_hash]).encode()).digest()


def interceptors(
    credential: Callable[[], Credential | None],
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> list[aio.ClientInterceptor]:
    """Interceptors for an asyncio channel proving every call with `credential()` (none when
    it returns None: an agent not enrolled yet). One per call shape: a channel files each
    interceptor under the first shape it implements."""
    return [
        _UnaryUnary(credential, now),
        _UnaryStream(credential, now),
        _StreamUnary(credential, now),
        _StreamStream(credential, now),
    ]


class _Proving:
    def __init__(
        self,
        credential: Callable[[], Credential | None],
        now: Callable[[], datetime.datetime],
    ) -> None:
        self._credential = credential
        self._now = now

    def details(self, details: aio.ClientCallDetails, request: Any) -> aio.ClientCallDetails:
        credential = self._credential()
        if credential is None:
            return details
        body = signing.UNSIGNED_PAYLOAD if request is None else signing.message_hash(request)
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        metadata = aio.Metadata(*(details.metadata or ()))
        proof = prove(credential.key, credential.certificate_der, method, body, self._now())
        for key, value in proof:
            metadata.add(key, value)
        return details._replace(metadata=metadata)


class _UnaryUnary(_Proving, aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.details(details, request), request)


class _UnaryStream(_Proving, aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.details(details, request), request)


class _StreamUnary(_Proving, aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self.details(details, None), requests)


class _StreamStream(_Proving, aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self.details(details, None), requests)
