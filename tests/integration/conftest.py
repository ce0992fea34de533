"""Fixtures shared by the integration tests of more than one module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import gitserver


@pytest.fixture(scope="module")
def git_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """`git daemon` serving a directory over git:// on 127.0.0.1 (the directory, its URL)."""
    with gitserver.git_daemon(tmp_path_factory.mktemp("git-daemon")) as served:
        yield served
