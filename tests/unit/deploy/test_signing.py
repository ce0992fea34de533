"""Signed calls: what the SDK signs, the server verifies; anything changed does not verify."""

from __future__ import annotations

import datetime

import pytest

from deploy import signing

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
METHOD = "/deploy.v1.Orchestrator/CreateDeployment"
BODY = signing.payload_hash(b"request bytes")


def signed(
    secret: str = "s3cret", method: str = METHOD, now: datetime.datetime = NOW
) -> dict[str, str]:
    return dict(signing.sign("ODAKTEST", secret, method, BODY, now))


def check(
    metadata: dict[str, str], method: str = METHOD, when: datetime.datetime = NOW
) -> str | None:
    claims = signing.parse(metadata)
    return signing.verify(claims, signing.signing_key("s3cret", claims.day), method, when)


def test_a_signature_verifies_for_its_method_and_time() -> None:
    metadata = signed()
    assert signing.parse(metadata).access_key_id == "ODAKTEST"
    assert signing.parse(metadata).payload_hash == BODY
    assert check(metadata) is None
    assert check(metadata, when=NOW + datetime.timedelta(minutes=4)) is None


def test_the_secret_is_not_in_the_metadata() -> None:
    assert not any("s3cret" in value for value in signed().values())


@pytest.mark.parametrize(
    ("metadata", "method", "when", "wrong"),
    [
        (signed(secret="other"), METHOD, NOW, "does not match"),
        (signed(), "/deploy.v1.Fleet/DispatchCommand", NOW, "does not match"),
        (signed(), METHOD, NOW + datetime.timedelta(minutes=6), "5 minutes"),
        ({**signed(), signing.CONTENT_SHA256: signing.payload_hash(b"x")}, METHOD, NOW, "match"),
    ],
)
def test_anything_changed_does_not_verify(
    metadata: dict[str, str], method: str, when: datetime.datetime, wrong: str
) -> None:
    assert wrong in (check(metadata, method, when) or "")


@pytest.mark.parametrize(
    ("metadata", "names"),
    [
        ({}, "no credentials"),
        ({signing.AUTHORIZATION: "Basic abc"}, "authorization must use"),
        ({**signed(), signing.AUTHORIZATION: f"{signing.ALGORITHM} Signature=x"}, "Credential"),
        ({**signed(), signing.DATE: "yesterday"}, signing.DATE),
        ({**signed(), signing.DATE: "20261129T120000Z"}, "day"),
    ],
)
def test_malformed_metadata_is_refused_naming_the_part(
    metadata: dict[str, str], names: str
) -> None:
    with pytest.raises(signing.SignatureError, match=names):
        signing.parse(metadata)
