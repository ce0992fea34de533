"""Where the CLI and the SDK find an access key, the way the AWS CLI does.

An explicit profile (`--profile`, `DEPLOY_PROFILE`) is read from the shared credentials file
(`DEPLOY_SHARED_CREDENTIALS_FILE`, default `~/.deploy/credentials`, INI sections of
`deploy_access_key_id` / `deploy_secret_access_key`); otherwise `DEPLOY_ACCESS_KEY_ID` and
`DEPLOY_SECRET_ACCESS_KEY`; otherwise the file's `default` profile; otherwise none (calls go
unsigned, and a server with authentication on refuses them).
"""

from __future__ import annotations

import configparser
import datetime
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from deploy import signing
from deploy.errors import ClientError

KEY_ID = "deploy_access_key_id"
SECRET = "deploy_secret_access_key"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key_id={self.access_key_id!r})"


def load_credentials(
    profile: str | None = None, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """The caller's access key, or None when none is configured. ClientError names a profile
    that is missing or incomplete."""
    env = os.environ if environ is None else environ
    profile = profile or env.get("DEPLOY_PROFILE")
    if profile is None:
        key_id, secret = env.get("DEPLOY_ACCESS_KEY_ID"), env.get("DEPLOY_SECRET_ACCESS_KEY")
        if key_id and secret:
            return Credentials(key_id, secret)
        if key_id or secret:
            raise ClientError(
                "set both DEPLOY_ACCESS_KEY_ID and DEPLOY_SECRET_ACCESS_KEY, or neither"
            )
    path = Path(
        env.get("DEPLOY_SHARED_CREDENTIALS_FILE") or Path.home() / ".deploy" / "credentials"
    )
    sections = _read(path)
    name = profile or "default"
    if name not in sections:
        if profile is None:
            return None
        raise ClientError(f"profile {profile!r} is not in {path}")
    section = sections[name]
    if not section.get(KEY_ID) or not section.get(SECRET):
        raise ClientError(f"profile {name!r} in {path} needs {KEY_ID} and {SECRET}")
    return Credentials(section[KEY_ID], section[SECRET])


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text())
    except FileNotFoundError:
        pass
    except (OSError, configparser.Error) as error:
        raise ClientError(f"cannot read {path}: {error}") from None
    return parser


class CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    """A call's details with more metadata (what an interceptor passes on)."""

    def __init__(self, details: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)
        self.metadata = [*(details.metadata or []), *metadata]


class SigningInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Signs every call of a channel with one access key (deploy.signing)."""

    def __init__(
        self,
        credentials: Credentials,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self._credentials = credentials
        self._now = now

    def _signed(self, details: grpc.ClientCallDetails, body_hash: str) -> CallDetails:
        method = details.method if isinstance(details.method, str) else details.method.decode()
        metadata = signing.sign(
            self._credentials.access_key_id,
            self._credentials.secret_access_key,
            method,
            body_hash,
            self._now(),
        )
        return CallDetails(details, metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._signed(details, signing.message_hash(request)), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._signed(details, signing.message_hash(request)), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._signed(details, signing.UNSIGNED_PAYLOAD), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._signed(details, signing.UNSIGNED_PAYLOAD), requests)
