"""DownloadBundle: get the revision (registry or a local path), verify it, unpack it safely."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import stat
import tarfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Protocol

import grpc

from agent.errors import ErrorCode, EventFailed
from deploy.v1 import agent_pb2, common_pb2, registry_pb2, registry_pb2_grpc

BUNDLE_KINDS = {
    common_pb2.BUNDLE_TYPE_ZIP: "zip",
    common_pb2.BUNDLE_TYPE_TAR: "tar",
    common_pb2.BUNDLE_TYPE_TGZ: "tgz",
}
LOCAL_KINDS = ("directory", "zip", "tar", "tgz")
DIGEST_FORM = re.compile(r"^sha256:[0-9a-f]{64}$")

log = logging.getLogger(__name__)


class BundleSource(Protocol):
    """Where DownloadBundle gets a revision from."""

    async def materialize(
        self, spec: agent_pb2.DeploymentSpec, bundle: Path, archive: Path
    ) -> None:
        """Leave the revision's files, checked, in a fresh `archive` directory."""


class RevisionSource:
    """Bundles fetched from where the revision lives — the registry (over the agent's channel)
    or S3 (with this host's own AWS credentials and endpoint, from the standard environment) —
    and checked against the digest recorded when the revision was registered."""

    def __init__(self, channel: grpc.aio.Channel, cache: BundleCache, git_cache: Path) -> None:
        self._channel = channel
        self._cache = cache
        self._git_cache = git_cache

    async def materialize(
        self, spec: agent_pb2.DeploymentSpec, bundle: Path, archive: Path
    ) -> None:
        revision = spec.revision
        digest, kind = _digest_and_kind(revision)
        direct = not spec.fetch_through_registry
        if revision.revision_type == common_pb2.REVISION_TYPE_GITHUB and direct:
            # The commit id names the content (Git checks every object it fetches); the zip
            # this host makes of it may differ in bytes from the registry's, so no digest.
            await fetch_git(revision.github_location, self._git_cache, bundle)
        elif not await asyncio.to_thread(self._cache.take, digest, bundle):
            if revision.revision_type == common_pb2.REVISION_TYPE_S3 and direct:
                await fetch_s3(revision.s3_location, bundle)
            else:  # the registry's store: it keeps a copy of S3 bundles, a zip of Git commits
                await fetch_bundle(self._channel, digest, bundle)
            await asyncio.to_thread(self._cache.keep, digest, bundle)
        await asyncio.to_thread(unpack, bundle, kind, archive)


def _digest_and_kind(revision: common_pb2.RevisionLocation) -> tuple[str, str]:
    if revision.revision_type == common_pb2.REVISION_TYPE_S3:
        s3 = revision.s3_location
        return s3.digest, BUNDLE_KINDS.get(s3.bundle_type, "zip")
    if revision.revision_type == common_pb2.REVISION_TYPE_GITHUB:
        return revision.github_location.digest, "zip"
    registry = revision.registry_location
    return registry.digest, BUNDLE_KINDS.get(registry.bundle_type, "zip")


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

    async def materialize(
        self, spec: agent_pb2.DeploymentSpec, bundle: Path, archive: Path
    ) -> None:
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
        shutil.copytree(self._path, archive, symlinks=True)


async def fetch_bundle(channel: grpc.aio.Channel, digest: str, target: Path) -> None:
    """Stream the bundle from the registry into `target`; fail unless its sha256 is `digest`."""
    if not digest:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, "no digest was recorded for this revision")
    stub = registry_pb2_grpc.RevisionRegistryStub(channel)
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    try:
        with target.open("wb") as handle:
            async for part in stub.DownloadBundle(
                registry_pb2.DownloadBundleRequest(digest=digest)
            ):
                hasher.update(part.chunk)
                await asyncio.to_thread(handle.write, part.chunk)
    except grpc.RpcError as error:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"could not download {digest}: {error.details()}"
        ) from error
    actual = f"sha256:{hasher.hexdigest()}"
    if actual != digest:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"bundle digest {actual} is not {digest}")


async def fetch_s3(location: common_pb2.S3Location, target: Path) -> None:
    """Download the object into `target`; fail unless its sha256 is the recorded digest."""
    where = f"s3://{location.bucket}/{location.key}"
    if not location.digest:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"{where}: no digest was recorded for it")
    actual = await asyncio.to_thread(_download_s3, location, target)
    if actual != location.digest:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE,
            f"{where} has digest {actual}, not {location.digest} as registered: "
            "the object changed after it was registered",
        )


def _download_s3(location: common_pb2.S3Location, target: Path) -> str:
    import boto3  # only hosts that deploy from S3 pay for importing it
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"s3://{location.bucket}/{location.key}"
    versioned = {"VersionId": location.version} if location.version else {}
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    try:
        body = boto3.client("s3").get_object(Bucket=location.bucket, Key=location.key, **versioned)[
            "Body"
        ]
        with target.open("wb") as handle:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                hasher.update(chunk)
                handle.write(chunk)
    except (ClientError, BotoCoreError) as error:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"could not download {where}: {error}"
        ) from None
    return f"sha256:{hasher.hexdigest()}"


async def fetch_git(location: common_pb2.GitHubLocation, cache: Path, target: Path) -> None:
    """Fetch the repository into this host's bare mirror and write a zip of the commit."""
    url, commit = location.clone_url or location.repository, location.commit_id
    mirror = cache / hashlib.sha256(url.encode()).hexdigest()[:32]
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        await _git("init", "--bare", "--quiet", str(mirror), what=f"git init {mirror}")
    if not await _git_ok("--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"):
        await _git(
            "--git-dir", str(mirror), "fetch", "--quiet", "--force", "--tags", url,
            "+refs/heads/*:refs/heads/*", what=f"git fetch {url}",
        )  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    await _git(
        "--git-dir", str(mirror), "archive", "--format=zip", "-o", str(target), commit,
        what=f"commit {commit} of {url}",
    )  # fmt: skip


async def _git_ok(*args: str) -> bool:
    try:
        await _git(*args, what="")
    except EventFailed:
        return False
    return True


async def _git(*args: str, what: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except FileNotFoundError:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE,
            "git is not installed on this host: install it, or create the deployment group "
            "with --fetch-revisions-through-registry",
        ) from None
    _, error = await process.communicate()
    if process.returncode != 0:
        detail = error.decode(errors="replace").strip().splitlines()
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"{what}: {detail[-1] if detail else 'git failed'}"
        )


def check_tree(root: Path) -> None:
    """A directory bundle may hold only files, directories and links that stay inside it."""
    resolved_root = root.resolve()
    for path in root.rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            if target != resolved_root and resolved_root not in target.parents:
                raise EventFailed(
                    ErrorCode.INVALID_BUNDLE,
                    f"bundle entry {path.relative_to(root)} links outside the bundle",
                )
        elif not (path.is_file() or path.is_dir()):
            raise EventFailed(
                ErrorCode.INVALID_BUNDLE,
                f"bundle entry {path.relative_to(root)} is not a regular file",
            )


def unpack(bundle: Path, kind: str, archive: Path) -> None:
    """Unpack into a fresh `archive` directory, rejecting entries that would escape it."""
    if archive.exists():
        shutil.rmtree(archive)
    archive.mkdir(parents=True)
    try:
        if kind == "zip":
            _unzip(bundle, archive)
        else:
            _untar(bundle, archive)
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        shutil.rmtree(archive, ignore_errors=True)
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"bundle cannot be unpacked: {exc}") from exc


def _safe_name(name: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"bundle entry {name!r} escapes the bundle")


def _unzip(bundle: Path, archive: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            _safe_name(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded (a file)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise EventFailed(
                    ErrorCode.INVALID_BUNDLE, f"bundle entry {info.filename!r} is not a file"
                )
        for info in zf.infolist():
            extracted = Path(zf.extract(info, archive))
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                extracted.chmod(mode)


def _untar(bundle: Path, archive: Path) -> None:
    with tarfile.open(bundle) as tf:
        for member in tf.getmembers():
            _safe_name(member.name)
            if not (member.isfile() or member.isdir()):
                raise EventFailed(
                    ErrorCode.INVALID_BUNDLE, f"bundle entry {member.name!r} is not a file"
                )
        tf.extractall(archive, filter="data")
