"""DownloadBundle: get the revision (registry, S3, Git or a local path) and verify it; then
unpack it safely (unpack.py). A bundle already fetched for this host is taken from the cache."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc

from agent.errors import ErrorCode, EventFailed
from agent.metrics import CACHE_HITS, DOWNLOAD_BYTES, DOWNLOAD_SECONDS
from agent.spec import DeploymentSpec, GitCommit, S3Object
from agent.unpack import COPY_CHUNK, FILE_MODE_CEILING, check_tree, copy_capped, unpack
from deploy.bundlelimits import BundleLimits, BundleTooLarge
from deploy.gitpolicy import (
    DEFAULT_ALLOWED_SCHEMES,
    GitPolicyError,
    check_commit,
    check_url,
    git_environment,
    git_options,
    redact_url,
)
from deploy.v1 import registry_pb2, registry_pb2_grpc

LOCAL_KINDS = ("directory", "zip", "tar", "tgz")
DIGEST_FORM = re.compile(r"^sha256:[0-9a-f]{64}\Z")
log = logging.getLogger(__name__)


class BundleSource(Protocol):
    """Where DownloadBundle gets a revision from."""

    async def materialize(self, spec: DeploymentSpec, bundle: Path, archive: Path) -> None:
        """Leave the revision's files, checked, in a fresh `archive` directory."""


@dataclass(frozen=True)
class FetchPolicy:
    """What this host accepts when it fetches a revision itself."""

    limits: BundleLimits = field(default_factory=BundleLimits)
    timeout_seconds: float = 600.0
    """Longest a download (registry, S3 or git) may take."""
    git_allowed_schemes: tuple[str, ...] = DEFAULT_ALLOWED_SCHEMES


class RevisionSource:
    """Bundles fetched from where the revision lives — the registry (over the agent's channel)
    or S3 (with this host's own AWS credentials and endpoint, from the standard environment) —
    and checked against the digest recorded when the revision was registered."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        cache: BundleCache,
        git_cache: Path,
        policy: FetchPolicy | None = None,
    ) -> None:
        self._channel = channel
        self._cache = cache
        self._git_cache = git_cache
        self._policy = policy or FetchPolicy()

    async def materialize(self, spec: DeploymentSpec, bundle: Path, archive: Path) -> None:
        revision = spec.revision
        digest = revision.digest
        direct = not spec.fetch_through_registry
        started = time.monotonic()
        if revision.git is not None and direct:
            # The commit id names the content (Git checks every object it fetches); the zip
            # this host makes of it may differ in bytes from the registry's, so no digest.
            await fetch_git(revision.git, self._git_cache, bundle, self._policy)
            _downloaded(bundle, started)
        elif await asyncio.to_thread(self._cache.take, digest, bundle):
            CACHE_HITS.inc()
        else:
            if revision.s3 is not None and direct:
                await fetch_s3(revision.s3, digest, bundle, self._policy)
            else:  # the registry's store: it keeps a copy of S3 bundles, a zip of Git commits
                await fetch_bundle(self._channel, digest, bundle, self._policy)
            _downloaded(bundle, started)
            await asyncio.to_thread(self._cache.keep, digest, bundle)
        verified = revision.git is None or not direct  # its bytes matched the digest
        await asyncio.to_thread(
            unpack, bundle, revision.bundle_kind, archive, self._policy.limits, verified
        )


def _downloaded(bundle: Path, started: float) -> None:
    DOWNLOAD_SECONDS.observe(time.monotonic() - started)
    DOWNLOAD_BYTES.inc(bundle.stat().st_size)


class BundleCache:
    """Verified bundles by digest (hard links, so a cached bundle costs no extra space while
    its deployment directory exists); the `limit` most recently used are kept."""

    def __init__(self, directory: Path, limit: int) -> None:
        self._directory = directory
        self._limit = max(limit, 1)

    def _path(self, digest: str) -> Path:
        return self._directory / digest.replace(":", "-")

    def take(self, digest: str, target: Path) -> bool:
        """Place the cached bundle at `target` if there is one still matching `digest`."""
        cached = self._path(digest) if DIGEST_FORM.match(digest) else None
        if cached is None or not cached.is_file() or sha256_of(cached) != digest:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        _link_or_copy(cached, target)
        cached.touch()
        log.info("bundle taken from the cache", extra={"fields": {"digest": digest}})
        return True

    def keep(self, digest: str, bundle: Path) -> None:
        """Remember a verified bundle; forget the least recently used beyond the limit."""
        if not DIGEST_FORM.match(digest):
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        staged = self._directory / f".{uuid.uuid4().hex}.tmp"  # then renamed: atomic
        _link_or_copy(bundle, staged)
        staged.replace(self._path(digest))
        entries = sorted(
            (p for p in self._directory.iterdir() if not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in entries[self._limit :]:
            stale.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


class LocalSource:
    """A bundle on this host (`deploy-agent local`): a directory or an archive file."""

    def __init__(self, path: Path, kind: str) -> None:
        self._path = path
        self._kind = kind

    async def materialize(self, spec: DeploymentSpec, bundle: Path, archive: Path) -> None:
        await asyncio.to_thread(self._copy, bundle, archive)

    def _copy(self, bundle: Path, archive: Path) -> None:
        if not self._path.exists():
            raise EventFailed(ErrorCode.INVALID_BUNDLE, f"bundle {self._path} does not exist")
        if self._kind != "directory":
            bundle.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._path, bundle)
            unpack(bundle, self._kind, archive)
            return
        if archive.exists():
            shutil.rmtree(archive)
        check_tree(self._path)
        shutil.copytree(self._path, archive, symlinks=True, copy_function=copy_capped)
        for directory in [archive, *(d for d in archive.rglob("*") if d.is_dir())]:
            directory.chmod(stat.S_IMODE(directory.stat().st_mode) & FILE_MODE_CEILING)


async def fetch_bundle(
    channel: grpc.aio.Channel, digest: str, target: Path, policy: FetchPolicy
) -> None:
    """Stream the bundle from the registry into `target`; fail unless its sha256 is `digest`."""
    if not digest:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, "no digest was recorded for this revision")
    stub = registry_pb2_grpc.RevisionRegistryStub(channel)
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    size = 0
    try:
        with target.open("wb") as handle:
            async for part in stub.DownloadBundle(
                registry_pb2.DownloadBundleRequest(digest=digest), timeout=policy.timeout_seconds
            ):
                size += len(part.chunk)
                policy.limits.check_size(size)
                hasher.update(part.chunk)
                await asyncio.to_thread(handle.write, part.chunk)
    except grpc.RpcError as error:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"could not download {digest}: {error.details()}"
        ) from error
    except BundleTooLarge as error:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, str(error)) from None
    actual = f"sha256:{hasher.hexdigest()}"
    if actual != digest:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"bundle digest {actual} is not {digest}")


async def fetch_s3(location: S3Object, digest: str, target: Path, policy: FetchPolicy) -> None:
    """Download the object into `target`; fail unless its sha256 is `digest`, recorded when it
    was registered."""
    if not digest:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"{location.url}: no digest was recorded for it"
        )
    actual = await asyncio.to_thread(_download_s3, location, target, policy)
    if actual != digest:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE,
            f"{location.url} has digest {actual}, not {digest} as registered: "
            "the object changed after it was registered",
        )


def _download_s3(location: S3Object, target: Path, policy: FetchPolicy) -> str:
    import boto3  # only hosts that deploy from S3 pay for importing it
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    where = location.url
    versioned = {"VersionId": location.version} if location.version else {}
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    deadline = time.monotonic() + policy.timeout_seconds
    timeouts = Config(connect_timeout=30, read_timeout=60, retries={"max_attempts": 3})
    size = 0
    try:
        body = boto3.client("s3", config=timeouts).get_object(
            Bucket=location.bucket, Key=location.key, **versioned
        )["Body"]
        with target.open("wb") as handle:
            for chunk in iter(lambda: body.read(COPY_CHUNK), b""):
                size += len(chunk)
                policy.limits.check_size(size)
                if time.monotonic() > deadline:
                    raise EventFailed(
                        ErrorCode.INVALID_BUNDLE,
                        f"could not download {where} within {policy.timeout_seconds:.0f}s",
                    )
                hasher.update(chunk)
                handle.write(chunk)
    except (ClientError, BotoCoreError) as error:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"could not download {where}: {error}"
        ) from None
    except BundleTooLarge as error:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"{where}: {error}") from None
    return f"sha256:{hasher.hexdigest()}"


async def fetch_git(location: GitCommit, cache: Path, target: Path, policy: FetchPolicy) -> None:
    """Fetch the repository into this host's bare mirror and write a zip of the commit. The
    URL and commit are checked here again: this runs as root with what the server sent."""
    try:
        url = check_url(location.clone_url or location.repository, policy.git_allowed_schemes)
        commit = check_commit(location.commit_id)
    except GitPolicyError as error:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"gitHubLocation: {error}") from None
    shown = redact_url(url)
    mirror = cache / hashlib.sha256(url.encode()).hexdigest()[:32]
    timeout = policy.timeout_seconds
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        await _git("init", "--bare", "--quiet", str(mirror), what="git init", timeout=timeout)
    if not await _git_ok("--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"):
        await _git(
            *git_options(policy.git_allowed_schemes), "--git-dir", str(mirror), "fetch",
            "--quiet", "--force", "--tags", "--", url, "+refs/heads/*:refs/heads/*",
            what=f"git fetch {shown}", timeout=timeout,
        )  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    await _git(
        "--git-dir", str(mirror), "archive", "--format=zip", "-o", str(target), commit, "--",
        what=f"commit {commit} of {shown}", timeout=timeout,
    )  # fmt: skip


async def _git_ok(*args: str) -> bool:
    try:
        await _git(*args, what="", timeout=60.0)
    except EventFailed:
        return False
    return True


async def _git(*args: str, what: str, timeout: float) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=git_environment(),
        )
    except FileNotFoundError:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE,
            "git is not installed on this host: install it, or create the deployment group "
            "with --fetch-revisions-through-registry",
        ) from None
    try:
        _, error = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"{what}: timed out after {timeout:.0f}s"
        ) from None
    if process.returncode != 0:
        detail = error.decode(errors="replace").strip().splitlines()
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"{what}: {detail[-1][:300] if detail else 'git failed'}"
        )
