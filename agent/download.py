"""DownloadBundle: get the revision (registry or a local path), verify it, unpack it safely."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import stat
import tarfile
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


class BundleSource(Protocol):
    """Where DownloadBundle gets a revision from."""

    async def materialize(
        self, spec: agent_pb2.DeploymentSpec, bundle: Path, archive: Path
    ) -> None:
        """Leave the revision's files, checked, in a fresh `archive` directory."""


class RegistrySource:
    """Bundles streamed from the registry over the agent's channel, checked against the digest."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel

    async def materialize(
        self, spec: agent_pb2.DeploymentSpec, bundle: Path, archive: Path
    ) -> None:
        await fetch_bundle(self._channel, spec.revision, bundle)
        kind = BUNDLE_KINDS.get(spec.revision.registry_location.bundle_type, "zip")
        await asyncio.to_thread(unpack, bundle, kind, archive)


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


async def fetch_bundle(
    channel: grpc.aio.Channel, location: common_pb2.RevisionLocation, target: Path
) -> None:
    """Stream the bundle into `target`; fail unless its sha256 is the revision's digest."""
    if location.revision_type != common_pb2.REVISION_TYPE_REGISTRY:
        raise EventFailed(ErrorCode.INVALID_BUNDLE, "only Registry revisions are supported yet")
    digest = location.registry_location.digest
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
