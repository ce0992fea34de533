"""DownloadBundle: fetch the revision from the registry, verify its digest, unpack it safely."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import grpc

from agent.errors import ErrorCode, EventFailed
from deploy.v1 import common_pb2, registry_pb2, registry_pb2_grpc


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


def unpack(bundle: Path, bundle_type: int, archive: Path) -> None:
    """Unpack into a fresh `archive` directory, rejecting entries that would escape it."""
    if archive.exists():
        shutil.rmtree(archive)
    archive.mkdir(parents=True)
    try:
        if bundle_type == common_pb2.BUNDLE_TYPE_ZIP:
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
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode) or (mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
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
