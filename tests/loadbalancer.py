"""HAProxy for tests (a web frontend over an initially empty backend the traffic service fills)
and a client that sends requests through it without pause, recording every answer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import free_port, required_tool, wait_until

LOAD_BALANCER = "test-haproxy"
"""The name the tests' servers give their HAProxy in `load_balancers`."""


def haproxy_binary() -> str:
    return required_tool("haproxy", "haproxy", also=("/usr/sbin/haproxy",))


@dataclass
class HAProxy:
    directory: Path
    port: int
    backend: str = "web"

    @property
    def socket(self) -> Path:
        return self.directory / "admin.sock"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def server_env(self) -> dict[str, str]:
        """deploy-server's environment naming this HAProxy as load balancer LOAD_BALANCER."""
        balancer = {LOAD_BALANCER: {"haproxy": {"admin_socket": str(self.socket)}}}
        return {"OPENDEPLOY_LOAD_BALANCERS": json.dumps(balancer)}

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "haproxy.cfg"
        config.write_text(
            "\n".join(
                [
                    "global",
                    f"    stats socket {self.socket} mode 600 level admin",
                    f"    pidfile {self.directory / 'haproxy.pid'}",
                    "defaults",
                    "    mode http",
                    "    timeout connect 2s",
                    "    timeout client 30s",
                    "    timeout server 30s",
                    "frontend web",
                    f"    bind 127.0.0.1:{self.port}",
                    f"    default_backend {self.backend}",
                    f"backend {self.backend}",
                    "    balance roundrobin",
                    "    option httpchk GET /",
                    "",
                ]
            )
        )
        subprocess.run([haproxy_binary(), "-f", str(config), "-D"], check=True)
        wait_until(self.socket.exists, 10, "HAProxy's admin socket")

    def kill(self) -> None:
        """SIGKILL, as a crash would end it (its runtime servers are gone with it)."""
        pid = int((self.directory / "haproxy.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, "HAProxy to die")
        self.socket.unlink(missing_ok=True)

    def stop(self) -> None:
        pid_file = self.directory / "haproxy.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)


def start_haproxy(directory: Path) -> HAProxy:
    proxy = HAProxy(directory, free_port())
    proxy.start()
    return proxy


@dataclass
class Traffic:
    """Requests through the load balancer, one after another from each of a few threads."""

    url: str
    threads: int = 3
    answers: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Traffic:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        wait_until(lambda: sum(self.answers.values()) or self.failures, 10, "a first answer")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(10)

    def seen(self) -> Counter[str]:
        """A copy of the answers so far."""
        with self._lock:
            return Counter(self.answers)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.answers.values()) + len(self.failures)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                body = urllib.request.urlopen(self.url, timeout=10).read().decode().strip()
            except (OSError, urllib.error.HTTPError) as error:
                with self._lock:
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {error}")
                continue
            with self._lock:
                self.answers[body] += 1


def sample(url: str, count: int) -> Counter[str]:
    """The answers to `count` requests in a row."""
    return Counter(
        urllib.request.urlopen(url, timeout=10).read().decode().strip() for _ in range(count)
    )
