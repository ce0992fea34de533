"""The content-addressed bundle store: files named by their sha256, written atomically."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from deploy.bundlelimits import BundleLimits
from deploy.private import private_dir
from services.core.errors import InvalidArgument, NotFound, ResourceExhausted
from services.core.revision import DIGEST

CHUNK_BYTES = 1024 * 1024


class BlobWriter:
    """Receives one upload: writes to a temporary file and hashes as it goes."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._path = store.root / "tmp" / f"{uuid.uuid4().hex}.part"
        self._file = self._path.open("wb")
        self._hash = hashlib.sha256()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._store.limits.max_bytes:
            raise ResourceExhausted(
                f"bundle is over the limit of {self._store.limits.max_bytes} bytes "
                "(max_bundle_bytes)"
            )
        self._hash.update(chunk)
        await asyncio.to_thread(self._file.write, chunk)

    async def commit(self, expected_digest: str) -> str:
        """Fsync and move into place under its digest; reject a mismatch with `expected_digest`."""
        digest = f"sha256:{self._hash.hexdigest()}"
        await asyncio.to_thread(self._finish)
        if expected_digest and expected_digest != digest:
            self.discard()
            raise InvalidArgument(
                f"header.expected_digest {expected_digest} does not match the content ({digest})"
            )
        target = self._store.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path, target)
        return digest

    def _finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        """Drop a partial or rejected upload."""
        if not self._file.closed:
            self._file.close()
        self._path.unlink(missing_ok=True)


class BlobStore:
    """Bundles under `root/sha256/<hex>`; a blob is present once its file is in place."""

    def __init__(self, root: Path, limits: BundleLimits | None = None) -> None:
        self.root = root
        self.limits = limits or BundleLimits()
        private_dir(root / "tmp")
        private_dir(root / "sha256")

    def path_for(self, digest: str) -> Path:
        if not DIGEST.match(digest):
            raise InvalidArgument(f"digest {digest!r} is invalid: expected sha256:<64 hex digits>")
        return self.root / "sha256" / digest.removeprefix("sha256:")

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def holds(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def size_of(self, digest: str) -> int:
        """Size in bytes; NotFound if the store does not hold the digest."""
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"bundle {digest} is not in the registry store; push it first") from None

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks."""
        self.size_of(digest)
        with self.path_for(digest).open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
