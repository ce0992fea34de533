"""Revisions in Git repositories: the registry fetches the commit and keeps a zip of its tree in
its own store, so hosts need no Git and every host deploys exactly the recorded bytes.

A repository is "owner/repo" under the configured base URL (GitHub by default) or a clone URL
whose scheme the configuration allows (`git_allowed_schemes`, https only by default; never
file://, local paths or ext::). Fetched repositories are kept, bare, under the data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from deploy.gitpolicy import (
    DEFAULT_ALLOWED_SCHEMES,
    GitPolicyError,
    check_commit,
    check_url,
    git_environment,
    git_options,
    redact_url,
)
from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from services.core.revision import BundleType, RevisionLocation
from services.registry.archives import bundle_problem
from services.registry.blobs import BlobStore

OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
GIT_TIMEOUT_SECONDS = 300.0


class GitBundles:
    def __init__(
        self,
        base_url: str,
        cache: Path,
        blobs: BlobStore,
        allowed_schemes: Sequence[str] = DEFAULT_ALLOWED_SCHEMES,
    ) -> None:
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._cache = cache
        self._blobs = blobs
        self._allowed = tuple(allowed_schemes)
        self._locks: dict[str, asyncio.Lock] = {}

    def clone_url(self, repository: str) -> str:
        """`owner/repo` under the base URL, anything else as a clone URL — either way one that
        the policy allows (InvalidArgument naming the field otherwise)."""
        url = f"{self._base_url}{repository}" if OWNER_REPO.match(repository) else repository
        try:
            return check_url(url, self._allowed)
        except GitPolicyError as error:
            raise InvalidArgument(f"revision.gitHubLocation.repository: {error}") from None

    async def bundle(self, revision: RevisionLocation) -> tuple[str, int]:
        """Fetch the commit, store a zip of its tree; ("sha256:<hex>", size) of that zip.
        NotFound names the repository or commit that does not exist."""
        try:
            commit = check_commit(revision.commit_id)
        except GitPolicyError as error:
            raise InvalidArgument(f"revision.gitHubLocation.commitId: {error}") from None
        url = self.clone_url(revision.repository)
        mirror = self._cache / hashlib.sha256(url.encode()).hexdigest()[:32]
        lock = self._locks.setdefault(str(mirror), asyncio.Lock())
        async with lock:  # one fetch per repository at a time
            if not await _has_commit(mirror, commit):
                await _fetch(url, mirror, self._allowed)
            if not await _has_commit(mirror, commit):
                raise NotFound(
                    f"revision.gitHubLocation.commitId {revision.commit_id} does not exist "
                    f"in {redact_url(url)}"
                )
            return await self._archive(mirror, commit, redact_url(url))

    async def _archive(self, mirror: Path, commit: str, repository: str) -> tuple[str, int]:
        process = await asyncio.create_subprocess_exec(
            "git",
            "--git-dir",
            str(mirror),
            "archive",
            "--format=zip",
            commit,
            "--",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        writer = self._blobs.writer()  # made after the process, so a failed start leaves none
        try:
            async with asyncio.timeout(GIT_TIMEOUT_SECONDS):
                assert process.stdout is not None
                while chunk := await process.stdout.read(1 << 20):
                    await writer.write(chunk)  # stops at the bundle size limit
                if await process.wait() != 0:
                    error = (await process.stderr.read()).decode() if process.stderr else ""
                    raise FailedPrecondition(
                        f"revision.gitHubLocation: git archive: {error.strip()[:300]}"
                    )
            digest = await writer.commit("")
        except BaseException as error:
            writer.discard()
            if process.returncode is None:
                process.kill()
                await process.wait()
            if isinstance(error, TimeoutError):
                raise FailedPrecondition(
                    f"revision.gitHubLocation: git archive took over {GIT_TIMEOUT_SECONDS:.0f}s"
                ) from None
            raise
        problem = await asyncio.to_thread(
            bundle_problem, self._blobs.path_for(digest), BundleType.ZIP, self._blobs.limits
        )
        if problem is not None:
            raise InvalidArgument(f"revision.gitHubLocation: {repository}@{commit} {problem}")
        return digest, writer.size


async def _git(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=git_environment(),  # never wait for a password; keeps the server's ssh keys
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


async def _fetch(url: str, mirror: Path, allowed: Sequence[str]) -> None:
    """Fetch every branch and tag; `--` keeps the URL from ever being read as an option."""
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        code, error = await _git("init", "--bare", "--quiet", str(mirror))
        if code != 0:
            raise FailedPrecondition(f"revision.gitHubLocation: git init: {error}")
    code, error = await _git(
        *git_options(allowed),
        "--git-dir",
        str(mirror),
        "fetch",
        "--quiet",
        "--force",
        "--tags",
        "--",
        url,
        "+refs/heads/*:refs/heads/*",
    )
    if code != 0:
        if not await _has_any_ref(mirror):
            shutil.rmtree(mirror, ignore_errors=True)
        raise NotFound(
            f"revision.gitHubLocation.repository could not be fetched from {redact_url(url)}: "
            f"{error.splitlines()[-1][:300] if error else 'git fetch failed'}"
        )


async def _has_any_ref(mirror: Path) -> bool:
    code, _ = await _git("--git-dir", str(mirror), "rev-parse", "--verify", "--quiet", "HEAD")
    return code == 0
