"""Processes for integration tests: free ports, waits with deadlines, spawned services."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0


_HANDED_OUT: set[int] = set()
"""Ports free_port gave before: a port handed to one agent's app is never handed to another,
even after the first app has stopped or before it has started (apps bind it later)."""


def free_port() -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise AssertionError("no fresh free port found")


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux's default 32768)."""
    with suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_port_range(width: int) -> int:
    """A port base with `width` consecutive free ports on 127.0.0.1, below the ephemeral range:
    a range is probed now and bound later (an app by its start hook), and in between any
    outgoing connection on the machine could be given a port inside the ephemeral range."""
    top = max(_ephemeral_low(), 10000 + 2 * width)
    for _ in range(50):
        base = random.randrange(10000, top - width)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + width):
                sockets.append(socket.socket())
                sockets[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError(f"no {width} consecutive free ports found")


def required_tool(binary: str, package: str, also: tuple[str, ...] = ()) -> str:
    """The path of a Debian package's binary the test needs (looked for on PATH, then at the
    paths in `also`): missing, the test fails under CI=true (.ci/run installs it) and is
    skipped elsewhere."""
    found = shutil.which(binary) or next((p for p in also if Path(p).exists()), None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs {binary} (.ci/run installs Debian's {package})")
        pytest.skip(f"{binary} is not installed (Debian's {package})")
    return found


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Re-check `condition` until it is truthy or the deadline passes (then fail naming `what`)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    metrics_url: str = ""
    """http://…/metrics of a deploy-server."""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait(5)


def spawn(name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    with log.open("ab") as handle:
        popen = subprocess.Popen(
            args,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return Process(name, popen, log)
