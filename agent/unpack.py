"""Unpacking a bundle safely: within the bundle limits, nothing outside the archive directory, no
link that leads out of it, no file more than 0o755 (setuid/setgid/sticky and group/other write
bits are dropped, as tar's `data` filter does)."""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shutil
import stat
import struct
import tarfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from agent.errors import ErrorCode, EventFailed
from deploy.bundlelimits import BundleLimits, BundleTooLarge

APPSPEC_LIKE = re.compile("appspec", re.IGNORECASE)
FILE_MODE_CEILING = 0o755
"""No file or directory unpacked from a bundle gets more than this (no setuid/setgid/sticky, no
group or other write); the appspec's permissions may ask for more."""
COPY_CHUNK = 1 << 20
MAX_LINK_TEXT = 4096
UNPACK_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,  # an encrypted zip entry
    NotImplementedError,  # a zip compression method Python does not have
)
"""What a malformed or unusual archive makes the archive modules raise."""


def copy_capped(source: str, target: str) -> None:
    """Copy a file of a directory bundle with its mode capped, as unpacking caps it."""
    shutil.copy2(source, target)
    os.chmod(target, capped_mode(os.stat(source).st_mode))


def capped_mode(mode: int) -> int:
    """A file's mode as installed from a bundle: owner may read and write, nothing above 0o755."""
    return (stat.S_IMODE(mode) & FILE_MODE_CEILING) | 0o600


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


def unpack(
    bundle: Path,
    kind: str,
    archive: Path,
    limits: BundleLimits | None = None,
    verified: bool = False,
) -> None:
    """Unpack into a fresh `archive` directory, rejecting entries that would escape it and
    archives beyond the limits (checked on the headers, then on every byte written).
    `verified`: the bundle's bytes matched the digest recorded at registration, so a zip's
    stored entries are copied by the kernel without their CRCs checked again."""
    limits = limits or BundleLimits()
    if archive.exists():
        shutil.rmtree(archive)
    archive.mkdir(parents=True)
    try:
        size = bundle.stat().st_size
        limits.check_size(size)
        if kind == "zip":
            _unzip(bundle, archive, limits, size, verified)
        else:
            _untar(bundle, archive, limits, size)
        check_tree(archive)
        _unwrap(archive)
    except BundleTooLarge as exc:
        shutil.rmtree(archive, ignore_errors=True)
        raise EventFailed(ErrorCode.INVALID_BUNDLE, str(exc)) from None
    except EventFailed:
        shutil.rmtree(archive, ignore_errors=True)
        raise
    except UNPACK_ERRORS as exc:
        shutil.rmtree(archive, ignore_errors=True)
        raise EventFailed(ErrorCode.INVALID_BUNDLE, f"bundle cannot be unpacked: {exc}") from exc


def _unwrap(archive: Path) -> None:
    """CodeDeploy's rule for `zip -r app.zip myapp/`: when the only top-level entry is a
    directory holding an appspec, that directory's contents are the revision."""
    entries = list(archive.iterdir())
    if len(entries) != 1 or entries[0].is_symlink() or not entries[0].is_dir():
        return
    if not any(APPSPEC_LIKE.search(child.name) for child in entries[0].iterdir()):
        return
    staged = archive.with_name(f".{archive.name}-{uuid.uuid4().hex}")
    entries[0].rename(staged)
    archive.rmdir()
    staged.rename(archive)


def _safe_name(name: str) -> None:
    path = PurePosixPath(name)
    if not name or "\x00" in name or path.is_absolute() or ".." in path.parts:
        raise EventFailed(
            ErrorCode.INVALID_BUNDLE, f"bundle entry {name[:200]!r} escapes the bundle"
        )


def _unzip(bundle: Path, archive: Path, limits: BundleLimits, size: int, verified: bool) -> None:
    """Files and directories first; links last, so nothing is ever written through one."""
    with zipfile.ZipFile(bundle) as zf, bundle.open("rb") as raw:
        infos = zf.infolist()
        limits.check_entries(len(infos))
        limits.check_unpacked(sum(info.file_size for info in infos), size)
        links: dict[str, str] = {}
        for info in infos:
            _safe_name(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded (a file)
            if kind == stat.S_IFLNK:
                if info.file_size > MAX_LINK_TEXT:
                    raise EventFailed(
                        ErrorCode.INVALID_BUNDLE, f"bundle entry {info.filename!r} is not a link"
                    )
                links[info.filename.rstrip("/")] = zf.read(info).decode("utf-8", "replace")
            elif kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise EventFailed(
                    ErrorCode.INVALID_BUNDLE, f"bundle entry {info.filename!r} is not a file"
                )
        _check_links(links)
        written = 0
        for info in infos:
            if info.filename.rstrip("/") in links:
                continue
            target = archive.joinpath(*PurePosixPath(info.filename).parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as handle:
                if verified and _plainly_stored(info):
                    written = _copy_stored(raw, info, handle, limits, written, size)
                else:
                    with zf.open(info) as source:
                        while chunk := source.read(COPY_CHUNK):
                            written += len(chunk)
                            limits.check_unpacked(written, size)
                            handle.write(chunk)
            target.chmod(capped_mode(info.external_attr >> 16 or 0o644))
        for name, text in links.items():
            target = archive.joinpath(*PurePosixPath(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(text, target)


LOCAL_HEADER = struct.Struct("<4s22xHH")
"""A zip entry's local header: its signature, then (after the fields the central directory
also holds) the lengths of its name and extra field; its data follows them."""
LOCAL_SIGNATURE = b"PK\x03\x04"
STORED_COPY = 64 << 20


def _plainly_stored(info: zipfile.ZipInfo) -> bool:
    """Stored as is (not compressed, not encrypted): its bytes in the bundle are the file's."""
    return (
        info.compress_type == zipfile.ZIP_STORED
        and not info.flag_bits & 0x1
        and info.compress_size == info.file_size
    )


def _copy_stored(
    raw: BinaryIO,
    info: zipfile.ZipInfo,
    handle: BinaryIO,
    limits: BundleLimits,
    written: int,
    size: int,
) -> int:
    """Copy a stored entry's bytes from the bundle by the kernel (no pass through Python, no
    CRC: the bundle's digest covers them); returns the bytes unpacked so far."""
    raw.seek(info.header_offset)
    header = raw.read(LOCAL_HEADER.size)
    if len(header) != LOCAL_HEADER.size:
        raise zipfile.BadZipFile(f"{info.filename}: truncated local header")
    signature, name_length, extra_length = LOCAL_HEADER.unpack(header)
    if signature != LOCAL_SIGNATURE:
        raise zipfile.BadZipFile(f"{info.filename}: bad magic number for the file header")
    offset = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
    if offset + info.file_size > size:
        raise zipfile.BadZipFile(f"{info.filename}: its data runs past the end of the bundle")
    end = offset + info.file_size
    while offset < end:
        copied = _kernel_copy(raw.fileno(), handle.fileno(), min(end - offset, STORED_COPY), offset)
        if copied == 0:
            raise zipfile.BadZipFile(f"{info.filename}: the bundle ended inside its data")
        offset += copied
        written += copied
        limits.check_unpacked(written, size)
    return written


def _kernel_copy(source: int, target: int, count: int, offset: int) -> int:
    """Up to `count` bytes from `offset` of `source` to where `target` is; through Python on
    a filesystem that cannot copy in the kernel."""
    try:
        return os.copy_file_range(source, target, count, offset)
    except OSError as error:
        if error.errno not in NO_KERNEL_COPY:
            raise
    data = os.pread(source, min(count, COPY_CHUNK), offset)
    return os.write(target, data)


NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


def _check_links(links: dict[str, str]) -> None:
    """A link's text must lead inside the bundle from where the link is, and no link may sit
    below another (its real place would not be its name). What the text reaches through other
    links is checked on the unpacked tree (check_tree)."""
    for name, text in links.items():
        parents = PurePosixPath(name).parents
        reached = posixpath.normpath(posixpath.join(posixpath.dirname(name), text))
        if (
            not text
            or "\x00" in text
            or text.startswith("/")
            or reached == ".."
            or reached.startswith("../")
            or any(str(parent) in links for parent in parents)
        ):
            raise EventFailed(
                ErrorCode.INVALID_BUNDLE, f"bundle entry {name[:200]!r} links outside the bundle"
            )


def _untar(bundle: Path, archive: Path, limits: BundleLimits, size: int) -> None:
    with tarfile.open(bundle) as tf:
        declared = 0
        links: dict[str, str] = {}
        for entries, member in enumerate(tf, start=1):  # headers one at a time: a huge entry
            declared += member.size  # is refused before its data is read
            limits.check_entries(entries)
            limits.check_unpacked(declared, size)
            _safe_name(member.name)
            if member.issym():
                links[member.name.rstrip("/")] = member.linkname
            elif not (member.isfile() or member.isdir()):
                raise EventFailed(
                    ErrorCode.INVALID_BUNDLE, f"bundle entry {member.name!r} is not a file"
                )
        _check_links(links)
        # the data filter also checks every path and link on disk, and caps modes
        tf.extractall(archive, filter="data")
