"""Join tokens (pure): what one is, how long it lives, how it is kept.

A token is shown once — to whoever registered the instance or created it — and only its SHA-256
is stored, so a copy of the database enrols nobody. A registration's token enrols that instance
once; a created token enrols up to `max_uses` new instances with its tags (a provisioned fleet).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from deploy.commandsig import public_key_pem
from services.core.errors import InvalidArgument
from services.core.pki import command_public_key, instance_certificate, requested_key
from services.core.tags import Tag

PREFIX = "odjt_"
DEFAULT_LIFETIME = timedelta(hours=1)
MAX_LIFETIME = timedelta(days=7)
MAX_USES = 1000


@dataclass(frozen=True)
class JoinToken:
    text: str
    """Shown once, never stored."""
    instance_name: str | None
    tags: tuple[Tag, ...]
    uses: int
    expires_at: datetime

    @property
    def digest(self) -> str:
        return token_digest(self.text)


def new_token(
    instance_name: str | None,
    tags: Sequence[Tag],
    uses: int,
    expires_in_seconds: int,
    now: datetime,
) -> JoinToken:
    """A fresh token; InvalidArgument names maxUses or expiresInSeconds out of bounds."""
    if not 0 <= uses <= MAX_USES:
        raise InvalidArgument(f"maxUses must be 1 to {MAX_USES}")
    lifetime = timedelta(seconds=expires_in_seconds) if expires_in_seconds else DEFAULT_LIFETIME
    if lifetime > MAX_LIFETIME:
        raise InvalidArgument(
            f"expiresInSeconds must be at most {int(MAX_LIFETIME.total_seconds())}"
        )
    text = PREFIX + secrets.token_urlsafe(32)
    return JoinToken(text, instance_name, tuple(tags), uses or 1, now + lifetime)


def token_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Certificates:
    """Issues instances' certificates from the cluster's authority (in `directory`), and tells
    enrolling agents the key their commands are signed with."""

    def __init__(self, directory: Path, lifetime: timedelta) -> None:
        self._directory = directory
        self._lifetime = lifetime
        self._command_key: str | None = None

    @staticmethod
    def check(request_pem: str) -> None:
        """InvalidArgument unless the request is one a certificate can be issued for (checked
        before a join token is spent)."""
        requested_key(request_pem)

    async def issue(self, request_pem: str, instance: str) -> tuple[str, str, str]:
        """(instance, certificate, authority certificate), PEM."""
        certificate, authority = await asyncio.to_thread(
            instance_certificate, self._directory, request_pem, instance, self._lifetime
        )
        return instance, certificate, authority

    async def command_key(self) -> str:
        """The commands' public key, PEM (read once)."""
        if self._command_key is None:
            key = await asyncio.to_thread(command_public_key, self._directory)
            self._command_key = public_key_pem(key)
        return self._command_key
