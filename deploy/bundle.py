"""Making a revision bundle from a directory: a zip with file modes kept, in a stable order."""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from pathlib import Path

from deploy.errors import ClientError


def make_zip(source: Path, target: Path, ignore_hidden: bool = False) -> str:
    """Zip `source` (which must hold appspec.yml) into `target`; returns "sha256:<hex>".
    With `ignore_hidden`, files and directories whose names start with "." are left out."""
    if not source.is_dir():
        raise ClientError(f"--source {source}: not a directory")
    if not (source / "appspec.yml").is_file() and not (source / "appspec.yaml").is_file():
        raise ClientError(f"--source {source}: no appspec.yml at its root")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if ignore_hidden and any(p.startswith(".") for p in relative.parts):
                continue
            if path.is_symlink():  # kept as a link, as `zip -y` keeps it
                _check_link(source, path)
                info = zipfile.ZipInfo(relative.as_posix(), (1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o120777 << 16
                archive.writestr(info, os.readlink(path))
            elif path.is_dir() and not any(path.iterdir()):  # an empty directory is installed too
                info = zipfile.ZipInfo(relative.as_posix() + "/", (1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o040000 | (os.stat(path).st_mode & 0o7777)) << 16
                archive.writestr(info, b"")
            elif path.is_file():
                info = zipfile.ZipInfo(relative.as_posix(), (1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o100000 | (os.stat(path).st_mode & 0o7777)) << 16
                data = path.read_bytes()
                info.compress_type = compression(data)
                archive.writestr(info, data)
    digest = hashlib.sha256()
    with target.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


SAMPLE_BYTES = 256 * 1024
STORE_ABOVE = 0.95
"""A file whose first SAMPLE_BYTES deflate to more than this share of their size is stored."""


def compression(data: bytes) -> int:
    """ZIP_DEFLATED, or ZIP_STORED for content that deflating does not shrink (images,
    archives, compiled or encrypted files), as `zip` stores it: deflating 100 MB of such bytes
    takes seconds for nothing, and every host inflates them again. Judged on a sample, so
    the decision costs little; either way the bundle unpacks to the same files."""
    sample = data[:SAMPLE_BYTES]
    if len(zlib.compress(sample)) > len(sample) * STORE_ABOVE:
        return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


def _check_link(source: Path, link: Path) -> None:
    """Hosts refuse a link that leads outside the bundle: say so before uploading."""
    inside = source.resolve()
    target = link.resolve()
    if target != inside and inside not in target.parents:
        raise ClientError(
            f"--source {source}: {link.relative_to(source)} links outside the directory"
        )


def upload_to_s3(bundle: Path, bucket: str, key: str) -> None:
    """Upload with boto3 (credentials and endpoint from the standard AWS environment)."""
    import boto3  # only pushes to S3 pay for importing it
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError as S3Error

    try:
        boto3.client("s3").upload_file(str(bundle), bucket, key)
    except (S3Error, BotoCoreError) as error:
        raise ClientError(f"--s3-location s3://{bucket}/{key}: {error}") from None
