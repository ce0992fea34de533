"""Benchmark: a large bundle to many real agents — a revision holding 100 MB of random bytes
(incompressible), pushed to the registry and deployed AllAtOnce to 20 deploy-agent processes
(download, digest check, unpack; no-op hooks), then the same revision deployed again.

Prints the deployment's throughput (bundle bytes delivered to all agents per second, create →
Succeeded) beside a plain loopback copy of the same bytes (one TCP connection and process per
agent over 127.0.0.1, each written to a file), the floor of any agent's work with them (the
same copy, hashed as it comes and written once more, as unpacking does), the ceiling of any
encrypted and verified delivery (the same copy over TLS, hashed as it comes, written once: no
protocol, unpacked as it arrives), and the bundle bytes
the registry served for each deployment (opendeploy_bundle_bytes_total{direction="out"}): a
redeploy is served from the hosts' caches. Not a test: it prints figures (with the issue's
goals beside them) and asserts nothing.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import multiprocessing
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

from bench.cluster import deploy, noop_bundle, push, real_fleet
from deploy.bundle import make_zip
from services.core.pki import server_tls

THROUGHPUT_GOAL = 0.5
"""Of the plain loopback copy's."""
SERVED_OUT = 'opendeploy_bundle_bytes_total{direction="out"}'
CHUNK = 1 << 20
RECEIVE_TIMEOUT = 300.0
"""Longest either end of a loopback copy waits for the other."""


def large_bundle(root: Path, megabytes: int) -> Path:
    """A no-op revision carrying `megabytes` of random bytes."""
    noop_bundle(root)
    with (root / "payload.bin").open("wb") as payload:
        for _ in range(megabytes):
            payload.write(os.urandom(CHUNK))
    return root


class Work(enum.Enum):
    """What each receiving process does with the bytes of a loopback copy."""

    COPY = "write them to a file"
    FLOOR = "hash them as they come, write them, and write them once more (unpacking's copy)"
    CEILING = "receive them over TLS, hash them as they come and write them once"
    """The least any delivery that is encrypted and verified costs, with no protocol around
    it and unpacking as it arrives: the most figure 5 can reach on this machine."""


def loopback_copy(source: Path, targets: list[Path], work: Work = Work.COPY) -> float:
    """Seconds to send `source` to each target at once, one loopback connection and one
    receiving process each, doing `work`."""
    with tempfile.TemporaryDirectory(prefix="opendeploy-tls-") as tls_directory:
        tls = _tls_files(Path(tls_directory)) if work is Work.CEILING else None
        with socket.create_server(("127.0.0.1", 0), backlog=len(targets)) as listener:
            return _copy(source, targets, work, listener, tls)


def _copy(
    source: Path,
    targets: list[Path],
    work: Work,
    listener: socket.socket,
    tls: tuple[Path, Path, Path] | None,
) -> float:
    port = listener.getsockname()[1]
    listener.settimeout(RECEIVE_TIMEOUT)
    server = None
    if tls is not None:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(tls[1], tls[2])

    def send(connection: socket.socket) -> None:
        with connection, source.open("rb") as data:
            if server is None:
                connection.sendfile(data)
                return
            with server.wrap_socket(connection, server_side=True) as encrypted:
                buffer = bytearray(CHUNK)
                while read := data.readinto(buffer):
                    encrypted.sendall(memoryview(buffer)[:read])

    started = time.perf_counter()
    ca = tls[0] if tls is not None else None
    receivers = [
        multiprocessing.Process(target=_receive, args=(port, target, work, ca))
        for target in targets
    ]
    # Every receiver is forked before any sending thread starts: a child forked later would
    # hold the others' connections open (no end of file for them) and could inherit a lock
    # a thread held in OpenSSL. They wait in the listener's backlog until accepted.
    for receiver in receivers:
        receiver.start()
    senders = [threading.Thread(target=send, args=(listener.accept()[0],)) for _ in targets]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    for receiver in receivers:
        receiver.join()
    return time.perf_counter() - started


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """The authority, certificate and key of a server on 127.0.0.1 (as the fleet's)."""
    tls = server_tls(directory, "127.0.0.1:0")
    (directory / "server.pem").write_bytes(tls.certificate)
    (directory / "server.key").write_bytes(tls.key)
    return tls.ca_path, directory / "server.pem", directory / "server.key"


def _receive(port: int, target: Path, work: Work, ca: Path | None) -> None:
    """One host's end of a loopback copy (see `Work`)."""
    buffer = bytearray(CHUNK)
    hasher = hashlib.sha256()
    connection = socket.create_connection(("127.0.0.1", port), timeout=RECEIVE_TIMEOUT)
    if ca is not None:
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_verify_locations(ca)
        connection = client.wrap_socket(connection, server_hostname="127.0.0.1")
    with connection, target.open("wb") as out:
        while received := connection.recv_into(buffer):
            if work is not Work.COPY:
                hasher.update(memoryview(buffer)[:received])
            out.write(memoryview(buffer)[:received])
    if work is Work.FLOOR:
        shutil.copyfile(target, target.with_suffix(".unpacked"))


def measure(workdir: Path, agents: int, megabytes: int) -> None:
    bundle = workdir / "bundle.zip"
    digest = make_zip(large_bundle(workdir / "src", megabytes), bundle)
    size = bundle.stat().st_size
    copies = [workdir / f"copy-{i}" for i in range(agents)]
    plain = loopback_copy(bundle, copies)
    floor = loopback_copy(bundle, copies, Work.FLOOR)
    ceiling = loopback_copy(bundle, copies, Work.CEILING)
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
    print(
        f"ceiling: the same bytes received over TLS, hashed and written once (encrypted and "
        f"verified, unpacked as they come) by {agents} processes with no protocol: "
        f"{ceiling:.2f} s, {delivered / ceiling:.0f} MB/s, {plain / ceiling:.0%} of the plain copy"
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
