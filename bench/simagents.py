"""Simulated agents: many AgentGateway sessions in one thread of the calling process, speaking
the real protocol (hello, heartbeats, started/finished reports), for fleets too big for a
process per host (benchmarks), and for agents that misbehave on purpose (tests). Given a join
token they enrol as real agents do (a certificate each) and prove every stream."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.access import TOKEN_USES
from deploy import certproof, signing
from deploy.v1 import agent_pb2, agent_pb2_grpc, common_pb2, fleet_pb2, fleet_pb2_grpc

RECONNECT_SECONDS = 0.5
Outbox = asyncio.Queue[agent_pb2.ConnectRequest | None]
"""A session's requests; None ends them."""
ENROL_CONCURRENCY = 8


@dataclass
class SimulatedAgents:
    """`names` connect to `address` with `tags` (over TLS trusting `ca_file`, or in plaintext
    when it is None; enrolling with `join_token` first when one is given); every command is
    answered Succeeded at once, or never acknowledged when `answer` is False."""

    address: str
    names: Sequence[str]
    tags: dict[str, str]
    ca_file: Path | None = None
    join_token: str | Sequence[str] = ""
    """One token, or several used in turn, each for as many names as it may enrol (1,000)."""
    answer: bool = True
    heartbeat_seconds: float | None = None
    """How often each session heartbeats; None: as the server's welcome says (a real agent)."""
    sessions_per_connection: int = 100
    """Sessions sharing one HTTP/2 connection (real agents have one each; thousands of
    sockets in one benchmark process would measure the benchmark)."""
    during: Callable[[str, str], list[agent_pb2.ConnectRequest]] | None = None
    """What else an agent sends between a command's start and its result, given the agent's
    name and the command's id (a misbehaving agent's output, say)."""
    after: Callable[[str, str], list[agent_pb2.ConnectRequest]] | None = None
    """What else it sends after the result."""
    failed_attempts: int = 0
    """Streams that ended in an error (each is followed by a reconnect)."""
    failures: Counter[str] = field(default_factory=Counter)
    """How many ended with each status and message."""
    received: list[str] = field(default_factory=list)
    """Command ids received, in order (from every session)."""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopped: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    _certificates: dict[str, bytes] = field(default_factory=dict)
    """Each session's certificate (DER), once enrolled; one key serves them all."""

    def __enter__(self) -> SimulatedAgents:
        if self.join_token and not self._certificates:
            self.enrol()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError("simulated agents did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(30)

    def enrol(self) -> None:
        """Enrol every session with the join token (done on entering, if not before)."""
        subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "simulated")])
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .sign(self._key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )
        with self._sync_channel() as channel, ThreadPoolExecutor(ENROL_CONCURRENCY) as pool:
            fleet = fleet_pb2_grpc.FleetStub(channel)

            tokens = [self.join_token] if isinstance(self.join_token, str) else self.join_token

            def enrol(index: int, name: str) -> None:
                token = tokens[min(index // TOKEN_USES, len(tokens) - 1)]
                enrolled = fleet.Enroll(
                    fleet_pb2.EnrollRequest(
                        join_token=token, instance_name=name, certificate_request=request
                    ),
                    timeout=60,
                )
                self._certificates[name] = x509.load_pem_x509_certificate(
                    enrolled.certificate.encode()
                ).public_bytes(serialization.Encoding.DER)

            list(pool.map(enrol, range(len(self.names)), self.names))

    def _credentials(self) -> grpc.ChannelCredentials | None:
        if self.ca_file is None:
            return None
        return grpc.ssl_channel_credentials(self.ca_file.read_bytes())

    def _sync_channel(self) -> grpc.Channel:
        credentials = self._credentials()
        if credentials is None:
            return grpc.insecure_channel(self.address)
        return grpc.secure_channel(self.address, credentials)

    def _proof(self, name: str) -> list[tuple[str, str | bytes]] | None:
        """A fresh proof of `name`'s stream (None when the server checks no identities)."""
        certificate = self._certificates.get(name)
        if certificate is None:
            return None
        now = datetime.datetime.now(datetime.UTC)
        path = "/deploy.v1.AgentGateway/Connect"
        return certproof.prove(self._key, certificate, path, signing.UNSIGNED_PAYLOAD, now)

    def _channel(self) -> grpc.aio.Channel:
        credentials = self._credentials()
        options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
        if credentials is None:
            return grpc.aio.insecure_channel(self.address, options=options)
        return grpc.aio.secure_channel(self.address, credentials, options=options)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        per = self.sessions_per_connection
        channels = [self._channel() for _ in range(0, len(self.names), per)]
        sessions = [
            asyncio.create_task(
                self._session(agent_pb2_grpc.AgentGatewayStub(channels[i // per]), name)
            )
            for i, name in enumerate(self.names)
        ]
        self._ready.set()
        await self._stopped.wait()
        for channel in channels:  # ends every stream; the sessions see it and return
            await channel.close(grace=None)
        await asyncio.wait(sessions, timeout=10)

    async def _session(self, stub: agent_pb2_grpc.AgentGatewayStub, name: str) -> None:
        """One agent: reconnects (after a short pause) whenever its stream ends."""
        assert self._stopped is not None
        while not self._stopped.is_set():
            outbox: Outbox = asyncio.Queue()
            hello = agent_pb2.AgentHello(
                instance_name=name,
                tags=[common_pb2.Tag(key=k, value=v) for k, v in self.tags.items()],
            )
            outbox.put_nowait(agent_pb2.ConnectRequest(hello=hello))
            beats: asyncio.Task[None] | None = None
            together = False
            try:
                async for message in stub.Connect(_drain(outbox), metadata=self._proof(name)):
                    kind = message.WhichOneof("body")
                    if kind == "welcome":
                        interval = message.welcome.heartbeat_interval_seconds
                        together = message.welcome.reports_together
                        beats = asyncio.create_task(
                            self._heartbeats(outbox, self.heartbeat_seconds or interval)
                        )
                    elif kind == "command":
                        self._on_command(name, message.command.command_id, outbox, together)
            except grpc.aio.AioRpcError as error:
                if not self._stopped.is_set():
                    self.failed_attempts += 1
                    self.failures[f"{error.code().name}: {error.details()}"[:200]] += 1
            finally:
                outbox.put_nowait(None)  # ends gRPC's task writing the requests
                if beats is not None:
                    beats.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), RECONNECT_SECONDS)

    def _on_command(
        self,
        name: str,
        command_id: str,
        outbox: Outbox,
        together: bool,
    ) -> None:
        """Report the command started and succeeded at once — the two in one message as a real
        agent gathers its reports, when the server takes them so and nothing else is to be
        sent between or after them."""
        self.received.append(command_id)
        if not self.answer:
            return
        started = agent_pb2.CommandStarted(command_id=command_id)
        finished = agent_pb2.CommandFinished(
            command_id=command_id,
            status=common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
            diagnostics=common_pb2.Diagnostics(error_code=common_pb2.LIFECYCLE_ERROR_CODE_SUCCESS),
        )
        if together and self.during is None and self.after is None:
            reports = [
                agent_pb2.AgentReport(started=started),
                agent_pb2.AgentReport(finished=finished),
            ]
            outbox.put_nowait(
                agent_pb2.ConnectRequest(reports=agent_pb2.AgentReports(reports=reports))
            )
            return
        outbox.put_nowait(agent_pb2.ConnectRequest(started=started))
        for message in self.during(name, command_id) if self.during else []:
            outbox.put_nowait(message)
        outbox.put_nowait(agent_pb2.ConnectRequest(finished=finished))
        for message in self.after(name, command_id) if self.after else []:
            outbox.put_nowait(message)

    @staticmethod
    async def _heartbeats(outbox: Outbox, interval: float) -> None:
        await asyncio.sleep(random.uniform(0, interval))  # not all in step after a storm
        while True:
            outbox.put_nowait(agent_pb2.ConnectRequest(heartbeat=agent_pb2.Heartbeat()))
            await asyncio.sleep(interval)


async def _drain(outbox: Outbox) -> AsyncIterator[agent_pb2.ConnectRequest]:
    """The stream's requests, until None (the stream has ended)."""
    while (message := await outbox.get()) is not None:
        yield message
