"""Benchmark: a large bundle to many real agents — a revision holding 100 MB of random bytes
(incompressible), pushed to the registry and deployed AllAtOnce to 20 deploy-agent processes
(download, digest check, unpack; no-op hooks), then the same revision deployed again.

Prints the deployment's throughput (bundle bytes delivered to all agents per second, create →
Succeeded) beside a plain loopback copy of the same bytes (one TCP connection and process per
agent over 127.0.0.1, each written to a file), the floor of any agent's work with them (the
same copy, hashed as it comes and written once more, as unpacking does), and the bundle bytes
the registry served for each deployment (opendeploy_bundle_bytes_total{direction="out"}): a
redeploy is served from the hosts' caches. Not a test: it prints figures (with the issue's
goals beside them) and asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from bench.cluster import deploy, noop_bundle, push, real_fleet
from deploy.bundle import make_zip

THROUGHPUT_GOAL = 0.5
"""Of the plain loopback copy's."""
SERVED_OUT = 'opendeploy_bundle_bytes_total{direction="out"}'
CHUNK = 1 << 20


def large_bundle(root: Path, megabytes: int) -> Path:
    """A no-op revision carrying `megabytes` of random bytes."""
    noop_bundle(root)
    with (root / "payload.bin").open("wb") as payload:
        for _ in range(megabytes):
            payload.write(os.urandom(CHUNK))
    return root


def loopback_copy(source: Path, targets: list[Path], verify: bool = False) -> float:
    """Seconds to send `source` to each target at once, one loopback connection and one
    receiving process each (see `_receive` for `verify`)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def send() -> None:
            senders = []
            for _ in targets:
                connection, _ = listener.accept()
                senders.append(threading.Thread(target=send_one, args=(connection,)))
                senders[-1].start()
            for sender in senders:
                sender.join()

        def send_one(connection: socket.socket) -> None:
            with connection, source.open("rb") as data:
                connection.sendfile(data)

        started = time.perf_counter()
        acceptor = threading.Thread(target=send)
        acceptor.start()
        receivers = [
            multiprocessing.Process(target=_receive, args=(port, target, verify))
            for target in targets
        ]
        for receiver in receivers:
            receiver.start()
        for receiver in receivers:
            receiver.join()
        acceptor.join()
        return time.perf_counter() - started


def _receive(port: int, target: Path, verify: bool) -> None:
    """One host's end: the bytes written to `target`. With `verify`, also what an agent must
    do with a bundle at the least, with no protocol, encryption or deployment around it: hash
    the bytes as they come, and write them once more (unpacking a stored entry, copied by the
    kernel)."""
    buffer = bytearray(CHUNK)
    hasher = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", port)) as connection, target.open("wb") as out:
        while received := connection.recv_into(buffer):
            if verify:
                hasher.update(memoryview(buffer)[:received])
            out.write(memoryview(buffer)[:received])
    if verify:
        shutil.copyfile(target, target.with_suffix(".unpacked"))


def measure(workdir: Path, agents: int, megabytes: int) -> None:
    bundle = workdir / "bundle.zip"
    digest = make_zip(large_bundle(workdir / "src", megabytes), bundle)
    size = bundle.stat().st_size
    copies = [workdir / f"copy-{i}" for i in range(agents)]
    plain = loopback_copy(bundle, copies)
    floor = loopback_copy(bundle, copies, verify=True)
    for copy in workdir.glob("copy-*"):
        copy.unlink()
    with real_fleet(workdir, agents, {"bench": "bundle"}, "CodeDeployDefault.AllAtOnce") as (
        running,
        client,
        _,
    ):
        revision = push(client, bundle, digest)
        served = running.metric(SERVED_OUT)
        first = deploy(client, revision, timeout=900)
        served_first = running.metric(SERVED_OUT) - served
        again = deploy(client, revision, timeout=900)
        served_again = running.metric(SERVED_OUT) - served - served_first
    delivered = agents * size / (1 << 20)
    ours, baseline = delivered / first, delivered / plain
    print(
        f"{agents:>6} {size / (1 << 20):>8.1f} {plain:>9.2f} {baseline:>10.0f} "
        f"{first:>9.2f} {ours:>10.0f} {ours / baseline:>7.0%} "
        f"{f'≥ {THROUGHPUT_GOAL:.0%}':>6} {served_first / (1 << 20):>10.1f} {again:>9.2f} "
        f"{served_again / (1 << 20):>10.1f} {'0':>5}",
        flush=True,
    )
    print(
        f"floor: the same bytes received, hashed, written and written once more (the least "
        f"unpacking costs) by {agents} processes with no protocol: {floor:.2f} s, "
        f"{delivered / floor:.0f} MB/s, {plain / floor:.0%} of the plain copy"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    print("a large revision to real agents, AllAtOnce; a loopback copy of the same bytes beside")
    print(
        f"{'agents':>6} {'MB':>8} {'copy s':>9} {'copy MB/s':>10} {'deploy s':>9} "
        f"{'MB/s':>10} {'ratio':>7} {'goal':>6} {'served MB':>10} {'again s':>9} "
        f"{'served MB':>10} {'goal':>5}"
    )
    with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
        measure(Path(tmp), args.agents, args.megabytes)


if __name__ == "__main__":
    main()
