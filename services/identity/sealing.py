"""Access key secrets sealed at rest with AES-GCM (`cryptography`).

Secrets are encrypted, not hashed: verifying a signature (deploy.signing, like SigV4) needs the
secret itself. The 256-bit key is `identity.key` beside the cluster's authority (pki_dir, 0600,
created on first start: services.core.pki.sealing_key); a copy of the database alone reveals no
secret. Each sealed
secret is bound to its access key id, so a sealed value moved to another key does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, secret: str, key_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), key_id.encode())

    def open(self, sealed: bytes, key_id: str) -> str | None:
        """The secret, or None when it was not sealed for `key_id` under this key."""
        try:
            return self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], key_id.encode()
            ).decode()
        except (InvalidTag, ValueError):
            return None
