"""Signed calls: a caller proves it holds an access key's secret without sending it.

The scheme is AWS Signature Version 4 carried in gRPC metadata: each call carries the access key
id, the time, a hash of the request message and an HMAC-SHA256 over the method, the time and that
hash, made with a key derived from the secret for the day. The server holds the secret (sealed at
rest), derives the same key and compares. A signature is good for one method and one request body
and for `MAX_SKEW` either side of its time; the secret itself never crosses the wire.

Shared by the SDK (which signs) and the services (which verify): pure functions, no I/O.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ALGORITHM = "OPENDEPLOY-HMAC-SHA256"
SCOPE_TAIL = "opendeploy/deploy/opendeploy_request"
AUTHORIZATION = "authorization"
DATE = "x-deploy-date"
CONTENT_SHA256 = "x-deploy-content-sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
"""The payload hash of a client-streaming call, whose messages are not known up front."""
MAX_SKEW = datetime.timedelta(minutes=5)
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class SignatureError(ValueError):
    """The call's signature metadata is missing or malformed; the message says which part."""


@dataclass(frozen=True)
class Signed:
    """What a call's metadata claims."""

    access_key_id: str
    day: str
    stamp: str
    payload_hash: str
    signature: str

    def time(self) -> datetime.datetime:
        return datetime.datetime.strptime(self.stamp, STAMP_FORMAT).replace(tzinfo=datetime.UTC)


def payload_hash(body: bytes | None) -> str:
    """The hex SHA-256 of a request message's bytes, or UNSIGNED-PAYLOAD for a stream."""
    return UNSIGNED_PAYLOAD if body is None else hashlib.sha256(body).hexdigest()


def message_hash(message: Any) -> str:
    """The payload hash of a protobuf request: of its deterministic serialization."""
    return payload_hash(bytes(message.SerializeToString(deterministic=True)))


def signing_key(secret: str, day: str) -> bytes:
    """The day's key derived from the secret (SigV4's chain), what a verifier may cache."""
    key = _hmac(f"OPENDEPLOY{secret}".encode(), day)
    for part in SCOPE_TAIL.split("/"):
        key = _hmac(key, part)
    return key


def sign(
    access_key_id: str, secret: str, method: str, body_hash: str, now: datetime.datetime
) -> list[tuple[str, str]]:
    """The metadata that signs one call of `method` (/deploy.v1.Service/Method)."""
    stamp = now.astimezone(datetime.UTC).strftime(STAMP_FORMAT)
    day = stamp[:8]
    signature = signature_for(signing_key(secret, day), method, stamp, day, body_hash)
    credential = f"{access_key_id}/{day}/{SCOPE_TAIL}"
    return [
        (AUTHORIZATION, f"{ALGORITHM} Credential={credential}, Signature={signature}"),
        (DATE, stamp),
        (CONTENT_SHA256, body_hash),
    ]


def signature_for(key: bytes, method: str, stamp: str, day: str, body_hash: str) -> str:
    canonical = "\n".join([method, stamp, body_hash])
    to_sign = "\n".join(
        [
            ALGORITHM,
            stamp,
            f"{day}/{SCOPE_TAIL}",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def parse(metadata: Mapping[str, str]) -> Signed:
    """The claims of a call's metadata; SignatureError names what is missing or malformed."""
    header = metadata.get(AUTHORIZATION)
    if not header:
        raise SignatureError("no credentials: sign calls with an access key")
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(f"authorization must use {ALGORITHM}")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    credential = fields.get("Credential", "").split("/", 2)
    signature = fields.get("Signature", "")
    stamp = metadata.get(DATE, "")
    body_hash = metadata.get(CONTENT_SHA256, "")
    if len(credential) != 3 or credential[2] != SCOPE_TAIL or not credential[0]:
        raise SignatureError("authorization has no valid Credential")
    if len(signature) != 64 or not body_hash:
        raise SignatureError("authorization has no valid Signature")
    try:
        signed = Signed(credential[0], credential[1], stamp, body_hash, signature)
        signed.time()
    except ValueError:
        raise SignatureError(f"{DATE} must be a time like 20260101T000000Z") from None
    if stamp[:8] != signed.day:
        raise SignatureError(f"the Credential's day is not the day of {DATE}")
    return signed


def verify(signed: Signed, key: bytes, method: str, now: datetime.datetime) -> str | None:
    """None when the signature is right for `method` at `now`, else what is wrong."""
    if abs(now - signed.time()) > MAX_SKEW:
        return "the signature's time is more than 5 minutes from the server's clock"
    expected = signature_for(key, method, signed.stamp, signed.day, signed.payload_hash)
    if not hmac.compare_digest(expected, signed.signature):
        return "the signature does not match (wrong secret access key?)"
    return None


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
