"""Hostile archives for tests: a zip bomb built in a moment."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path


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
