"""`make cluster` / `make demo` / `make down`: services behind HAProxy, agents, the demo deploy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.harness import free_port_range

REPO = Path(__file__).resolve().parents[2]


def localcluster(
    action: str, directory: Path, port_base: int, agents: int = 3
) -> subprocess.CompletedProcess[str]:
    """Run `python -m deploy.localcluster` (what make cluster/demo/down run)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.localcluster",
            action,
            "--dir",
            str(directory),
            "--port-base",
            str(port_base),
            "--agents",
            str(agents),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )


@pytest.fixture
def haproxy() -> None:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs HAProxy (.ci/run installs it)")
        pytest.skip("HAProxy is not installed")


@pytest.mark.usefixtures("haproxy")
def test_cluster_demo_and_down(tmp_path: Path) -> None:
    base = free_port_range(100)
    directory = tmp_path / "cluster"
    try:
        up = localcluster("up", directory, base)
        assert up.returncode == 0, up.stdout + up.stderr
        env = (directory / "env").read_text()
        assert f"export DEPLOY_ENDPOINT=127.0.0.1:{base}" in env
        assert f"export WEB_URL=http://127.0.0.1:{base + 80}/" in env

        demo = localcluster("demo", directory, base)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "ValidateService" in demo.stdout
        body = urllib.request.urlopen(f"http://127.0.0.1:{base + 80}/", timeout=5).read()
        assert body.startswith(b"hello-web version ")
    finally:
        down = localcluster("down", directory, base)
    assert down.returncode == 0, down.stderr
    assert not list((directory / "pids").glob("*.pid"))
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{base + 81}/", timeout=2)
