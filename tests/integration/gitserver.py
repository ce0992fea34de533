"""Git revisions for integration tests: real repositories, served by `git daemon` over git://."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import unique
from tests.integration.apps import App
from tests.processes import free_port, spawn, wait_until

GIT_SERVER_ENV = {"OPENDEPLOY_GIT_ALLOWED_SCHEMES": "git"}
"""The tests' repositories are served by `git daemon` (git://); production allows https only."""
GIT_AGENT_CONFIG = {"git_allowed_schemes": ["git"]}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def git_repository(root: Path, source: Path) -> tuple[Path, str]:
    """A real repository (bare, as a server holds it) whose one commit holds `source`."""
    work = root / "work"
    shutil.copytree(source, work)
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", "-A", cwd=work)
    git(
        "-c", "user.name=t", "-c", "user.email=t@example.com",
        "commit", "--quiet", "-m", "release", cwd=work,
    )  # fmt: skip
    bare = root / "owner" / "app.git"
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=root)
    return bare, git("rev-parse", "HEAD", cwd=work)


def deploy_git(app: App, repository: str, commit: str) -> str:
    created = app.ok(
        "create-deployment",
        "--application-name",
        app.name,
        "--deployment-group-name",
        app.group,
        "--deployment-config-name",
        "CodeDeployDefault.AllAtOnce",
        "--github-location",
        f"repository={repository},commitId={commit}",
    )
    return str(created["deploymentId"])


@contextmanager
def git_daemon(root: Path) -> Iterator[tuple[Path, str]]:
    """`git daemon` serving `root` over git:// on 127.0.0.1: the directory and its base URL."""
    port = free_port()
    process = spawn(
        "git-daemon",
        [
            "git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
            f"--port={port}", f"--base-path={root}", str(root),
        ],
        root / "daemon.log",
    )  # fmt: skip
    wait_until(lambda: _listening(port), 30, "git daemon to listen")
    yield root, f"git://127.0.0.1:{port}/"
    process.stop()


def serve(daemon: tuple[Path, str], bare: Path) -> str:
    """Put the bare repository under the daemon's root; its git:// URL."""
    root, base_url = daemon
    repository = f"team/{unique('site')}"  # the daemon serves every database's run
    shutil.copytree(bare, root / repository)
    return f"{base_url}{repository}"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
