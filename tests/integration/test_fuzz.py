"""Fuzzing every RPC of every service of a real deploy-server: thousands of malformed and
boundary requests, built from the protos' own descriptors. None may end in INTERNAL or UNKNOWN,
none may leave a traceback in the server's log, and a refused request leaves every table as it
was (the whole database is compared before and after each refused unary call)."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from deploy.v1 import (
    agent_pb2,
    fleet_pb2,
    identity_pb2,
    orchestrator_pb2,
    registry_pb2,
    traffic_pb2,
)
from tests.harness import channel_to, start_server
from tests.processes import Process

REQUESTS_PER_DATABASE = 6_000
"""Run against SQLite and PostgreSQL: 12,000 requests in all."""
SEED = int(os.environ.get("OPENDEPLOY_FUZZ_SEED", "20261129"))
"""Fixed, so a failure reproduces; set OPENDEPLOY_FUZZ_SEED to explore further."""
SERVICES: list[ServiceDescriptor] = [
    module.DESCRIPTOR.services_by_name[name]
    for module, name in [
        (registry_pb2, "RevisionRegistry"),
        (orchestrator_pb2, "Orchestrator"),
        (fleet_pb2, "Fleet"),
        (agent_pb2, "AgentGateway"),
        (traffic_pb2, "TrafficRouter"),
        (identity_pb2, "Identity"),
    ]
]
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNIMPLEMENTED}
WRITES = {
    "RevisionRegistry": ("registry_",),
    "Fleet": ("fleet_",),
    "Orchestrator": ("orch_", "registry_"),  # it registers revisions with the registry
    "TrafficRouter": ("traffic_",),
    "Identity": ("identity_",),
}
"""The tables a call to each service may write (its own, and its peers' it calls)."""
BACKGROUND = {"fleet_commands", "fleet_command_updates", "orch_cursors"}
"""Written by the services' own loops at any moment: the fleet fails the commands that the fuzz
dispatched to agents that never come, and the orchestrator follows those updates."""

STRINGS = [
    "",
    "a",
    "web",
    "fuzz-app",
    "fuzz-group",
    "agent-1",
    "CodeDeployDefault.AllAtOnce",
    "d-ABCDEFGHI",
    "x" * 100,
    "x" * 101,
    "y" * 5000,
    "../../etc/passwd",
    "/",
    "a;b",
    "web/srv; disable server web/x",
    "127.0.0.1",
    "127.0.0.1:8080",
    "[::1]:65536",
    "host:0",
    "\x00",
    "é" * 64,
    "--upload-pack=touch /tmp/fuzzed",
    "ext::sh -c touch% /tmp/fuzzed",
    "file:///etc",
    "https://127.0.0.1/hook?token=secret",
    "http://169.254.169.254/latest",
    "owner/repo",
    "sha256:" + "0" * 64,
    "sha256:xyz",
    "a" * 40,
    "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1",
    "s3://bucket/key",
    "Key=a,Value=b",
    "{",
    "FLEET_PERCENT",
    "\n",
]
CODE_POINTS = [*range(0, 128), 0xA0, 0xE9, 0x2028, 0x202E, 0xFEFF, 0xFFFD, 0x1F600, 0x10FFFF]
INTS = [0, 1, -1, 2, 7, 50, 99, 100, 101, 256, 257, 3600, 3601, 65535, 65536]
BIG_INTS = [2**31 - 1, -(2**31), 2**63 - 1, -(2**63)]


class Fuzzer:
    """Random messages of any type: boundary values, hostile strings, unknown enum numbers,
    long repeated fields, nested messages (depth-bounded)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def message(self, descriptor: Any, depth: int = 0) -> Message:
        message = GetMessageClass(descriptor)()
        for field in descriptor.fields:
            if self.random.random() < 0.35:
                continue
            self._fill(message, field, depth)
        return message

    def _fill(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        if field.is_repeated:
            count = self.random.choice([0, 1, 2, 3, 3, 60])
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                target = getattr(message, field.name)
                key_field, value_field = field.message_type.fields
                for _ in range(count):
                    key = self._scalar(key_field)
                    if value_field.message_type is None:
                        target[key] = self._scalar(value_field)
                return
            values = getattr(message, field.name)
            for _ in range(count):
                if field.message_type is not None:
                    if depth < 3:
                        values.add().CopyFrom(self.message(field.message_type, depth + 1))
                else:
                    values.append(self._scalar(field))
            return
        if field.message_type is not None:
            if depth < 3:
                getattr(message, field.name).CopyFrom(self.message(field.message_type, depth + 1))
            return
        setattr(message, field.name, self._scalar(field))

    def _scalar(self, field: FieldDescriptor) -> Any:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            if self.random.random() < 0.2:  # any text at all, as well as the hostile pool
                length = self.random.choice([1, 8, 40, 300])
                return "".join(chr(self.random.choice(CODE_POINTS)) for _ in range(length))
            return self.random.choice(STRINGS)
        if kind == FieldDescriptor.TYPE_BYTES:
            return self.random.randbytes(self.random.choice([0, 1, 100, 4096]))
        if kind == FieldDescriptor.TYPE_BOOL:
            return self.random.random() < 0.5
        if kind == FieldDescriptor.TYPE_ENUM:
            return self.random.choice([*field.enum_type.values_by_number, 999])
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return self.random.choice([0.0, -1.0, 1e300, 0.5])
        value = self.random.choice(INTS + BIG_INTS)
        unsigned = kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64)
        bits = 64 if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64) else 32
        low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return min(max(value, low), high)


class Tables:
    """A digest of every row of each table of the server's database(s)."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self._digest: Callable[[], dict[str, str]]
        if database_url:
            import psycopg

            connection = psycopg.connect(database_url, autocommit=True)
            self._close: Callable[[], None] = connection.close
            names = [
                r[0]
                for r in connection.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' ORDER BY table_name"
                )
            ]
            # One round trip for every table (a query per table, twice per call, made the
            # PostgreSQL run take minutes): each table's rows as text, sorted, hashed.
            query = "SELECT " + ", ".join(
                f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f'FROM "{n}" t)'
                for n in names
            )
            self._digest = lambda: _digest(
                (n, [h])
                for n, h in zip(names, connection.execute(query).fetchone() or (), strict=True)
            )
        else:
            files = sorted(data_dir.glob("*.db"))
            connections = [sqlite3.connect(f, isolation_level=None) for f in files]
            self._close = lambda: [c.close() for c in connections] and None
            tables = [
                (c, n)
                for c in connections
                for (n,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            self._digest = lambda: _digest(
                (n, c.execute(f'SELECT * FROM "{n}"').fetchall()) for c, n in tables
            )

    def digest(self) -> dict[str, str]:
        """Each table's digest, by name."""
        return self._digest()

    def close(self) -> None:
        self._close()


def _digest(tables: Iterator[tuple[str, list[Any]]]) -> dict[str, str]:
    digests = {}
    for name, rows in tables:
        hasher = hashlib.sha256()
        for row in sorted(repr(r) for r in rows):
            hasher.update(row.encode())
        digests[name] = hasher.hexdigest()
    return digests


def call(channel: grpc.Channel, method: MethodDescriptor, fuzzer: Fuzzer) -> grpc.StatusCode:
    """One fuzzed call of any shape; its status (OK, or the error's)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = GetMessageClass(method.output_type)
    codec = {
        "request_serializer": lambda m: m.SerializeToString(),
        "response_deserializer": response_class.FromString,
    }
    requests = [fuzzer.message(method.input_type) for _ in range(fuzzer.random.randint(1, 4))]
    try:
        if method.client_streaming and method.server_streaming:
            stream = channel.stream_stream(path, **codec)(iter(requests), timeout=0.3)
            for _ in stream:
                pass
        elif method.client_streaming:
            channel.stream_unary(path, **codec)(iter(requests), timeout=10)
        elif method.server_streaming:
            for _ in channel.unary_stream(path, **codec)(requests[0], timeout=0.05):
                pass
        else:
            channel.unary_unary(path, **codec)(requests[0], timeout=10)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
            return grpc.StatusCode.OK  # a watch stream stays open: that is its answer
        return code
    return grpc.StatusCode.OK


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[Process, str]]:
    # Authentication off: the fuzz is for what reaches the servicers — internal RPCs included,
    # which refuse every user at the gate (test_auth covers the gate).
    process, address = start_server(tmp_path, database_url, auth=False)
    yield process, address
    process.stop()


def test_thousands_of_malformed_requests_to_every_rpc_change_nothing_and_break_nothing(
    server: tuple[Process, str], database_url: str, tmp_path: Path
) -> None:
    process, address = server
    methods = [m for service in SERVICES for m in service.methods]
    fuzzer = Fuzzer(SEED + (1 if database_url else 0))
    tables = Tables(database_url, tmp_path / "data")
    outcomes: Counter[tuple[str, str]] = Counter()
    bad: list[str] = []
    try:
        with channel_to(address) as channel:
            for index in range(REQUESTS_PER_DATABASE):
                method = methods[index % len(methods)]
                unary = not (method.client_streaming or method.server_streaming)
                before = tables.digest() if unary else {}
                code = call(channel, method, fuzzer)
                outcomes[(method.name, code.name)] += 1
                if code in FORBIDDEN:
                    bad.append(f"{method.full_name}: {code.name}")
                elif unary and code != grpc.StatusCode.OK:
                    after = tables.digest()
                    if changed := sorted(
                        t
                        for t in after
                        if t.startswith(WRITES[method.containing_service.name])
                        and t not in BACKGROUND
                        and after[t] != before.get(t)
                    ):
                        bad.append(
                            f"{method.full_name}: refused with {code.name} but wrote {changed}"
                        )
    finally:
        tables.close()
    log = process.log.read_text()
    first = log.find("Traceback")
    assert bad == [], (bad[:20], log[first - 300 : first + 3000] if first >= 0 else "")
    assert {m.name for m in methods} == {name for name, _ in outcomes}
    refused = sum(n for (_, code), n in outcomes.items() if code != "OK")
    assert refused > REQUESTS_PER_DATABASE // 2  # the fuzz reached the checks, not only OK
    assert "Traceback" not in log, log[first - 300 : first + 3000]
    assert "unhandled error" not in log
