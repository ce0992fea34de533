"""The Debian packages the local cluster uses (HAProxy, Prometheus): found, or installed with
apt-get when running as root on Debian/Ubuntu — saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path


def find_or_install(
    package: str, binary: str, say: Callable[[str], None], sbin: bool = False
) -> str | None:
    """The binary's path (also looked for in /usr/sbin with `sbin`), else None."""

    def found() -> str | None:
        path = shutil.which(binary)
        if path is None and sbin and Path(f"/usr/sbin/{binary}").exists():
            path = f"/usr/sbin/{binary}"
        return path

    if path := found():
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    say(f"{package} is missing: installing it with apt-get (root on Debian/Ubuntu)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=False,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return found()
