"""Fetching revisions: hostile Git locations never reach git, and a Git server that never
answers times out."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.download import FetchPolicy, fetch_git
from agent.errors import EventFailed
from agent.spec import GitCommit

HOSTILE_GIT = [
    ("--upload-pack=touch {marker}", "a" * 40, "not a repository URL"),
    ("file://{repo}", "a" * 40, "scheme 'file' is not allowed"),
    ("{repo}", "a" * 40, "not a scheme://host/path URL"),
    ("ext::sh -c touch% {marker}", "a" * 40, "not a repository URL"),
    ("https://example.invalid/r.git", "--output={marker}", "not a full commit id"),
    ("https://example.invalid/r.git", "HEAD", "not a full commit id"),
]


@pytest.mark.parametrize(("repository", "commit", "message"), HOSTILE_GIT)
async def test_the_host_checks_git_locations_itself(
    tmp_path: Path, repository: str, commit: str, message: str
) -> None:
    """What the server sent is checked again on the host, where git would run as root."""
    marker = tmp_path / "pwned"
    location = GitCommit(repository.format(marker=marker, repo=tmp_path), commit)
    with pytest.raises(EventFailed, match=message):
        await fetch_git(location, tmp_path / "cache", tmp_path / "bundle", FetchPolicy())
    assert not marker.exists()
    assert not (tmp_path / "cache").exists()


async def test_a_git_fetch_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        location = GitCommit(f"git://127.0.0.1:{port}/app.git", "a" * 40)
        policy = FetchPolicy(timeout_seconds=1, git_allowed_schemes=("git",))
        with pytest.raises(EventFailed, match="timed out after 1s"):
            await fetch_git(location, tmp_path / "cache", tmp_path / "bundle", policy)
