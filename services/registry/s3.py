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
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
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

    async def describe(self, revision: RevisionLocation) -> tuple[str, int]:
        """("sha256:<hex>", size) of the object as stored now, read through once; NotFound
        naming the location when the bucket, key or version does not exist."""
        return await asyncio.to_thread(self._describe, revision)

    def _describe(self, revision: RevisionLocation) -> tuple[str, int]:
        where = f"s3://{revision.bucket}/{revision.key}"
        versioned = {"VersionId": revision.version} if revision.version else {}
        try:
            head = self._s3().head_object(Bucket=revision.bucket, Key=revision.key, **versioned)
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
            digest, problem = self._inspect(revision, versioned)
            if problem:
                raise InvalidArgument(f"revision.s3Location: {where} {problem}")
            return digest, int(head.get("ContentLength", 0))
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

    def _inspect(self, revision: RevisionLocation, versioned: dict[str, str]) -> tuple[str, str]:
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
            digest = f"sha256:{hasher.hexdigest()}"
            problem = bundle_problem(copy, revision.bundle_type, self._blobs.limits)
            if not problem:
                os.replace(copy, self._blobs.path_for(digest))
        finally:
            copy.unlink(missing_ok=True)
        return digest, problem
