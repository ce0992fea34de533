"""Revisions in Git repositories: the registry fetches the commit and keeps a zip of its tree in
its own store, so hosts need no Git and every host deploys exactly the recorded bytes.

A repository is "owner/repo" under the configured base URL (GitHub by default) or any clone URL
(https://, git://, ssh, file://). Fetched repositories are kept, bare, under the data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from pathlib import Path

from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from services.core.revision import BundleType, RevisionLocation
from services.registry.archives import bundle_problem
from services.registry.blobs import BlobStore

COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
GIT_TIMEOUT_SECONDS = 300.0


class GitBundles:
    def __init__(self, base_url: str, cache: Path, blobs: BlobStore) -> None:
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._cache = cache
        self._blobs = blobs
        self._locks: dict[str, asyncio.Lock] = {}

    def clone_url(self, repository: str) -> str:
        """`owner/repo` under the base URL; anything else is taken as a clone URL."""
        if OWNER_REPO.match(repository):
            return f"{self._base_url}{repository}"
        return repository

    async def bundle(self, revision: RevisionLocation) -> tuple[str, int]:
        """Fetch the commit, store a zip of its tree; ("sha256:<hex>", size) of that zip.
        NotFound names the repository or commit that does not exist."""
        commit = revision.commit_id.lower()
        if not COMMIT.match(commit):
            raise InvalidArgument(
                f"revision.gitHubLocation.commitId {revision.commit_id!r} is not a commit id"
            )
        url = self.clone_url(revision.repository)
        mirror = self._cache / hashlib.sha256(url.encode()).hexdigest()[:32]
        lock = self._locks.setdefault(str(mirror), asyncio.Lock())
        async with lock:  # one fetch per repository at a time
            if not await _has_commit(mirror, commit):
                await _fetch(url, mirror, revision.repository)
            if not await _has_commit(mirror, commit):
                raise NotFound(
                    f"revision.gitHubLocation.commitId {revision.commit_id} does not exist "
                    f"in {revision.repository}"
                )
            return await self._archive(mirror, commit, revision.repository)

    async def _archive(self, mirror: Path, commit: str, repository: str) -> tuple[str, int]:
        writer = self._blobs.writer()
        try:
            process = await asyncio.create_subprocess_exec(
                "git",
                "--git-dir",
                str(mirror),
                "archive",
                "--format=zip",
                commit,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert process.stdout is not None
            while chunk := await process.stdout.read(1 << 20):
                await writer.write(chunk)
            if await process.wait() != 0:
                error = (await process.stderr.read()).decode() if process.stderr else ""
                raise FailedPrecondition(f"revision.gitHubLocation: git archive: {error.strip()}")
            digest = await writer.commit("")
        except BaseException:
            writer.discard()
            raise
        problem = await asyncio.to_thread(
            bundle_problem, self._blobs.path_for(digest), BundleType.ZIP
        )
        if problem:
            raise InvalidArgument(f"revision.gitHubLocation: {repository}@{commit} {problem}")
        return digest, writer.size


async def _git(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},  # never wait for a password
    )
    try:
        _, error = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        return 1, f"timed out after {GIT_TIMEOUT_SECONDS:.0f}s"
    return process.returncode or 0, error.decode(errors="replace").strip()


async def _has_commit(mirror: Path, commit: str) -> bool:
    if not mirror.exists():
        return False
    code, _ = await _git("--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}")
    return code == 0


async def _fetch(url: str, mirror: Path, repository: str) -> None:
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        code, error = await _git("init", "--bare", "--quiet", str(mirror))
        if code != 0:
            raise FailedPrecondition(f"revision.gitHubLocation: git init: {error}")
    code, error = await _git(
        "--git-dir",
        str(mirror),
        "fetch",
        "--quiet",
        "--force",
        "--tags",
        url,
        "+refs/heads/*:refs/heads/*",
    )
    if code != 0:
        if not await _has_any_ref(mirror):
            shutil.rmtree(mirror, ignore_errors=True)
        raise NotFound(
            f"revision.gitHubLocation.repository {repository!r} could not be fetched "
            f"from {url}: {error.splitlines()[-1] if error else 'git fetch failed'}"
        )


async def _has_any_ref(mirror: Path) -> bool:
    code, _ = await _git("--git-dir", str(mirror), "rev-parse", "--verify", "--quiet", "HEAD")
    return code == 0
