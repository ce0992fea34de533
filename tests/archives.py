"""Archives for tests: a directory packed as zip/tar/tgz with its links kept (as `zip -ry`
and `tar` keep them), and a zip bomb built in a moment."""

from __future__ import annotations

import os
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path


def archive_of(directory: Path, path: Path, kind: str, wrap: str = "") -> Path:
    """Pack `directory` into `path` (zip, tar or tgz), links kept as links; with `wrap`, every
    entry sits under that one top-level directory (what `zip -r app.zip app/` makes)."""
    entries = sorted(directory.rglob("*"))
    prefix = f"{wrap}/" if wrap else ""
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            for entry in entries:
                name = prefix + entry.relative_to(directory).as_posix()
                if entry.is_symlink():
                    add_zip_link(archive, name, os.readlink(entry))
                elif entry.is_dir():
                    archive.writestr(zipfile.ZipInfo(name + "/"), b"")
                else:
                    archive.write(entry, name)
        return path
    with tarfile.open(path, "w:gz" if kind == "tgz" else "w") as archive:
        for entry in entries:
            archive.add(entry, prefix + entry.relative_to(directory).as_posix(), recursive=False)
    return path


def add_zip_link(archive: zipfile.ZipFile, name: str, target: str) -> None:
    """A symlink entry as Info-ZIP writes it: Unix type bits, the link text as content."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive.writestr(info, target)


def zip_bomb(path: Path, declared: int) -> Path:
    """A zip whose one entry declares (and, deflated, really holds) `declared` zero bytes,
    written in a few seconds: one full-flushed deflate block of a MiB of zeros, repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = declared >> 20
    info = zipfile.ZipInfo("appspec.yml")
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = declared
    info.compress_size = len(block) * blocks + 2
    info.CRC = 0
    with path.open("wb") as handle:
        header = info.FileHeader(zip64=True)
        handle.write(header)
        for _ in range(blocks):
            handle.write(block)
        handle.write(compressor.flush())
        info.header_offset = 0
        central = _central_directory(info, handle.tell())
        handle.write(central)
    return path


def _central_directory(info: zipfile.ZipInfo, offset: int) -> bytes:
    """Central directory, zip64 end records and end record for the one entry at offset 0."""
    extra = struct.pack("<HHQQQ", 1, 24, info.file_size, info.compress_size, 0)
    name = info.filename.encode()
    entry = struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", 45, 3, 45, 0, 0, info.compress_type, 0, 0,
        info.CRC, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF,
    ) + name + extra  # fmt: skip
    end64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(entry), offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(entry), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(entry), 0xFFFFFFFF, 0)
    return entry + end64 + locator + end
