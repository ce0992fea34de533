"""Directories and files only their owner may read: the server's data directory, SQLite files
and bundle store; the agent's root and deployment directories. Created with their modes, and
tightened if an earlier version left them looser."""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a directory of mode 0700; missing parents are made 0700 too."""
    if not path.parent.exists():
        private_dir(path.parent)
    path.mkdir(exist_ok=True, mode=DIRECTORY_MODE)
    if path.stat().st_mode & 0o777 != DIRECTORY_MODE:
        path.chmod(DIRECTORY_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` as an existing file of mode 0600 (an empty one if it was missing), in a private
    directory."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    if path.stat().st_mode & 0o777 != FILE_MODE:
        path.chmod(FILE_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a whole file of mode 0600 (renamed into place: never seen half-written)."""
    partial = private_file(path.with_name(path.name + ".new"))
    partial.write_bytes(data)
    os.replace(partial, path)
