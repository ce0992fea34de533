"""Revisions kept in S3 (or any S3-compatible store): what the registry records about them.

boto3 takes its endpoint and credentials from the standard environment (AWS_ENDPOINT_URL or
AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, …), so any S3-compatible server works. Its calls block,
so they run on a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from services.core.metrics import BUNDLE_BYTES
from services.core.revision import RevisionLocation
from services.registry.archives import bundle_problem
from services.registry.blobs import BlobStore

CHUNK = 1 << 20
MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound"}


class S3Bundles:
    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            self._client = boto3.client("s3")
        return self._client

    async def head(self, revision: RevisionLocation) -> S3Object:
        """The object as stored now, without reading it: FailedPrecondition when it is not the
        ETag the revision names, InvalidArgument when it is over the bundle size limit,
        NotFound naming the location when the bucket, key or version does not exist."""
        return await asyncio.to_thread(self._head, revision)

    async def digest(self, revision: RevisionLocation) -> str:
        """ "sha256:<hex>" of the object, read through once (and kept in the registry's store,
        for groups that fetch through it); InvalidArgument when it is no bundle."""
        return await asyncio.to_thread(self._digest, revision)

    def _head(self, revision: RevisionLocation) -> S3Object:
        where = _where(revision)
        with _s3_errors(revision):
            head = self._s3().head_object(
                Bucket=revision.bucket, Key=revision.key, **_versioned(revision)
            )
        etag = str(head.get("ETag", "")).strip('"')
        if revision.etag and revision.etag.strip('"') != etag:
            raise FailedPrecondition(
                f"revision.s3Location.eTag {revision.etag!r} does not match {where} "
                f"(its ETag is {etag!r})"
            )
        size = int(head.get("ContentLength", 0))
        if size > self._blobs.limits.max_bytes:
            raise InvalidArgument(
                f"revision.s3Location: {where} is {size} bytes, over the limit of "
                f"{self._blobs.limits.max_bytes} (max_bundle_bytes)"
            )
        return S3Object(etag, size)

    def _digest(self, revision: RevisionLocation) -> str:
        with _s3_errors(revision):
            digest, problem = self._inspect(revision, _versioned(revision))
        if problem is not None:
            raise InvalidArgument(f"revision.s3Location: {_where(revision)} {problem}")
        return digest

    def _inspect(
        self, revision: RevisionLocation, versioned: dict[str, str]
    ) -> tuple[str, str | None]:
        """Read the object through once: its digest, and what is wrong with it as a bundle.
        A good one is kept in the registry's store too, for groups that fetch through it."""
        body = self._s3().get_object(Bucket=revision.bucket, Key=revision.key, **versioned)["Body"]
        hasher = hashlib.sha256()
        copy = self._blobs.root / "tmp" / f"{uuid.uuid4().hex}.s3"
        try:
            with copy.open("wb") as handle:
                for chunk in iter(lambda: body.read(CHUNK), b""):
                    hasher.update(chunk)
                    handle.write(chunk)
                    BUNDLE_BYTES.labels("in").inc(len(chunk))
            digest = f"sha256:{hasher.hexdigest()}"
            problem = bundle_problem(copy, revision.bundle_type, self._blobs.limits)
            if problem is None:
                os.replace(copy, self._blobs.path_for(digest))
        finally:
            copy.unlink(missing_ok=True)
        return digest, problem


@dataclass(frozen=True)
class S3Object:
    etag: str
    size: int


def _where(revision: RevisionLocation) -> str:
    return f"s3://{revision.bucket}/{revision.key}"


def _versioned(revision: RevisionLocation) -> dict[str, str]:
    return {"VersionId": revision.version} if revision.version else {}


@contextmanager
def _s3_errors(revision: RevisionLocation) -> Iterator[None]:
    """S3's refusals as ours: NotFound naming what does not exist, FailedPrecondition else."""
    where = _where(revision)
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in MISSING:
            raise NotFound(
                f"revision.s3Location: {where}"
                + (f" version {revision.version}" if revision.version else "")
                + " does not exist"
            ) from None
        raise FailedPrecondition(f"revision.s3Location: {where}: {error}") from None
    except BotoCoreError as error:
        raise FailedPrecondition(f"revision.s3Location: {where}: {error}") from None
