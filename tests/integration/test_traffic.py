"""The traffic service against a real HAProxy (runtime API) and real HTTP servers: instances
enter, share and leave a backend without a failed request; a drain waits for open requests."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deploy.client import DeployClient
from deploy.errors import ApiError
from deploy.v1 import traffic_pb2
from tests.harness import client_of, start_server, unique
from tests.loadbalancer import LOAD_BALANCER, HAProxy, Traffic, sample, start_haproxy
from tests.processes import Process, free_port, wait_until


class App:
    """An HTTP server answering its name; /slow holds the answer until released."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = threading.Event()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/slow":
                    app.release.wait(30)
                body = app.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    running = start_haproxy(tmp_path_factory.mktemp("haproxy"))
    yield running
    running.stop()


@pytest.fixture
def server(tmp_path: Path, database_url: str, proxy: HAProxy) -> Iterator[tuple[Process, str]]:
    process, address = start_server(tmp_path, database_url, env=proxy.server_env())
    yield process, address
    process.stop()


@pytest.fixture
def router(server: tuple[Process, str]) -> Iterator[DeployClient]:
    """The administrator: target groups and their members' addresses."""
    with client_of(server[1]) as client:
        yield client


@pytest.fixture
def orchestrator(server: tuple[Process, str]) -> Iterator[DeployClient]:
    """The orchestrator's process: traffic in and out (internal RPCs, refused to users)."""
    with client_of(server[1], service="orchestrator") as client:
        yield client


@pytest.fixture
def apps() -> Iterator[list[App]]:
    running = [App("blue"), App("green")]
    yield running
    for app in running:
        app.stop()


def create_group(client: DeployClient, backend: str, delay: int = 30) -> str:
    name = unique("tg")
    client.call(
        client.traffic.CreateTargetGroup,
        traffic_pb2.CreateTargetGroupRequest(
            name=name,
            load_balancer=LOAD_BALANCER,
            port=80,
            deregistration_delay_seconds=delay,
            haproxy=traffic_pb2.HAProxyTargetGroup(backend=backend),
        ),
    )
    return name


def allow(
    client: DeployClient, orchestrator: DeployClient, group: str, app: App, weight: int = 100
) -> None:
    client.call(
        client.traffic.SetTargetAddress,
        traffic_pb2.SetTargetAddressRequest(
            target_group_name=group, instance_name=app.name, address=app.address
        ),
    )
    orchestrator.call(
        orchestrator.traffic.AllowTraffic,
        traffic_pb2.AllowTrafficRequest(
            target_group_name=group, instance_name=app.name, host="127.0.0.1", weight=weight
        ),
    )


def block(client: DeployClient, group: str, app: App) -> traffic_pb2.BlockTrafficResponse:
    return client.traffic.BlockTraffic(
        traffic_pb2.BlockTrafficRequest(target_group_name=group, instance_name=app.name),
        timeout=60,
    )


def test_instances_enter_share_and_leave_without_a_failed_request(
    router: DeployClient,
    orchestrator: DeployClient,
    server: tuple[Process, str],
    proxy: HAProxy,
    apps: list[App],
) -> None:
    blue, green = apps
    group = create_group(router, proxy.backend)
    allow(router, orchestrator, group, blue)
    with Traffic(proxy.url) as traffic:
        allow(router, orchestrator, group, green)
        assert set(sample(proxy.url, 20)) == {"blue", "green"}
        orchestrator.call(
            orchestrator.traffic.SetWeights,
            traffic_pb2.SetWeightsRequest(
                target_group_name=group, weights={"blue": 25, "green": 75}
            ),
        )
        # The background traffic draws from the same weighted round robin, so the share is
        # measured over every request answered in the window, not over this thread's alone.
        before = traffic.seen()
        mix = sample(proxy.url, 100) + (traffic.seen() - before)
        assert 0.65 <= mix["green"] / mix.total() <= 0.85, mix
        block(orchestrator, group, blue)
        assert sample(proxy.url, 20) == {"green": 20}
        allow(router, orchestrator, group, blue)
        block(orchestrator, group, green)
        assert sample(proxy.url, 20) == {"blue": 20}
    assert traffic.failures == []
    assert traffic.total > 50
    info = router.call(
        router.traffic.GetTargetGroup, traffic_pb2.GetTargetGroupRequest(name=group)
    ).target_group
    states = {t.instance_name: (t.state, t.weight, t.address) for t in info.targets}
    assert states == {
        "blue": (traffic_pb2.TARGET_STATE_SERVING, 100, blue.address),
        "green": (traffic_pb2.TARGET_STATE_UNUSED, 0, green.address),
    }
    metrics = urllib.request.urlopen(server[0].metrics_url, timeout=5).read().decode()
    assert f'opendeploy_traffic_weight{{load_balancer="{group}",target="blue"}} 100.0' in metrics
    assert f'opendeploy_traffic_weight{{load_balancer="{group}",target="green"}} 0.0' in metrics


def test_block_waits_for_open_requests_then_takes_the_instance_out(
    router: DeployClient, orchestrator: DeployClient, proxy: HAProxy, apps: list[App]
) -> None:
    blue, _green = apps
    group = create_group(router, proxy.backend)
    allow(router, orchestrator, group, blue)
    slow: list[bytes] = []
    request = threading.Thread(
        target=lambda: slow.append(urllib.request.urlopen(proxy.url + "slow", timeout=30).read())
    )
    request.start()
    wait_until(lambda: _connections(proxy, "blue"), 10, "the slow request to reach blue")
    releaser = threading.Timer(0.5, blue.release.set)
    releaser.start()
    answer = block(orchestrator, group, blue)
    request.join(10)
    assert slow == [b"blue"]
    assert answer.open_connections == 0
    assert answer.drain_seconds >= 0.4


def test_block_gives_up_waiting_after_the_deregistration_delay(
    router: DeployClient, orchestrator: DeployClient, proxy: HAProxy, apps: list[App]
) -> None:
    blue, _ = apps
    group = create_group(router, proxy.backend, delay=1)
    allow(router, orchestrator, group, blue)
    request = threading.Thread(
        target=lambda: urllib.request.urlopen(proxy.url + "slow", timeout=30).read(),
        daemon=True,
    )
    request.start()
    wait_until(lambda: _connections(proxy, "blue"), 10, "the slow request to reach blue")
    answer = block(orchestrator, group, blue)
    assert answer.open_connections == 1
    assert 0.9 <= answer.drain_seconds < 5
    blue.release.set()


def test_bad_requests_name_the_field(
    router: DeployClient, orchestrator: DeployClient, proxy: HAProxy
) -> None:
    cases = [
        (
            traffic_pb2.CreateTargetGroupRequest(
                name="x", provider=traffic_pb2.LOAD_BALANCER_PROVIDER_HAPROXY, port=80
            ),
            "loadBalancer",
        ),
        (
            traffic_pb2.CreateTargetGroupRequest(
                name="x",
                load_balancer=LOAD_BALANCER,
                port=80,
                haproxy=traffic_pb2.HAProxyTargetGroup(admin_socket="/tmp/other.sock"),
            ),
            "haproxy.adminSocket",
        ),
        (
            traffic_pb2.CreateTargetGroupRequest(
                name="x",
                provider=traffic_pb2.LOAD_BALANCER_PROVIDER_ELBV2,
                port=80,
                elbv2=traffic_pb2.ELBv2TargetGroup(target_group_arn="arn:aws:x"),
            ),
            "elbv2",
        ),
        (
            traffic_pb2.CreateTargetGroupRequest(name="x", load_balancer="elsewhere", port=80),
            "loadBalancer",
        ),
        (traffic_pb2.CreateTargetGroupRequest(name="x", port=80), "provider"),
        (
            traffic_pb2.CreateTargetGroupRequest(
                name="x", provider=traffic_pb2.LOAD_BALANCER_PROVIDER_NONE, port=0
            ),
            "port",
        ),
    ]
    for request, field in cases:
        with pytest.raises(ApiError) as error:
            router.call(router.traffic.CreateTargetGroup, request)
        assert error.value.code == "INVALID_ARGUMENT"
        assert field in str(error.value)
    group = create_group(router, "no-such-backend")
    with pytest.raises(ApiError) as error:
        orchestrator.call(
            orchestrator.traffic.AllowTraffic,
            traffic_pb2.AllowTrafficRequest(
                target_group_name=group, instance_name="a", host="127.0.0.1", weight=1
            ),
        )
    assert error.value.code == "FAILED_PRECONDITION"
    assert "no-such-backend" in str(error.value)
    answer = orchestrator.call(
        orchestrator.traffic.SetWeights,
        traffic_pb2.SetWeightsRequest(target_group_name=group, weights={"a": 5}),
    )
    assert list(answer.not_serving) == ["a"]
    with pytest.raises(ApiError) as error:
        orchestrator.call(
            orchestrator.traffic.AllowTraffic,
            traffic_pb2.AllowTrafficRequest(target_group_name="nope", instance_name="a", weight=1),
        )
    assert error.value.code == "NOT_FOUND"


def _connections(proxy: HAProxy, server: str) -> int:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(proxy.socket))
        sock.sendall(b"show stat\n")
        text = b""
        while chunk := sock.recv(65536):
            text += chunk
    for line in text.decode().splitlines():
        parts = line.split(",")
        if len(parts) > 4 and parts[0] == proxy.backend and parts[1] == server:
            return int(parts[4] or 0)
    return 0


def _servers_state(proxy: HAProxy) -> list[tuple[str, ...]]:
    """Each server's backend, name, address, port, admin state and weight (no timers)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(proxy.socket))
        sock.sendall(b"show servers state\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = next(line for line in lines if line.startswith("# be_id")).lstrip("# ").split()
    keep = ["be_name", "srv_name", "srv_addr", "srv_port", "srv_admin_state", "srv_uweight"]
    rows = [line.split() for line in lines if line and not line.startswith("#")]
    return sorted(tuple(row[header.index(k)] for k in keep) for row in rows if len(row) > 5)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1;disable server web/blue",
        "127.0.0.1 weight 256",
        "evil\nshutdown sessions server web/blue",
        "-host",
        "a..b",
        "x" * 300,
    ],
)
def test_a_host_that_could_carry_a_runtime_api_command_is_refused(
    router: DeployClient, orchestrator: DeployClient, proxy: HAProxy, host: str
) -> None:
    """Names of its own: the HAProxy is shared by the module's servers, which restore their
    targets in the background when they start."""
    app, intruder = App(unique("blue")), unique("intruder")
    group = create_group(router, proxy.backend)
    allow(router, orchestrator, group, app)

    def mine() -> list[tuple[str, ...]]:
        return [row for row in _servers_state(proxy) if row[1] in (app.name, intruder)]

    before = mine()
    for caller, request, method in [
        (
            orchestrator,
            traffic_pb2.AllowTrafficRequest(
                target_group_name=group, instance_name=intruder, host=host, weight=1
            ),
            orchestrator.traffic.AllowTraffic,
        ),
        (
            router,
            traffic_pb2.SetTargetAddressRequest(
                target_group_name=group, instance_name=intruder, address=f"{host}:80"
            ),
            router.traffic.SetTargetAddress,
        ),
    ]:
        with pytest.raises(ApiError) as error:
            caller.call(method, request)
        assert error.value.code == "INVALID_ARGUMENT"
        assert "is not" in str(error.value)
    try:
        assert mine() == before
        assert [row[1] for row in before] == [app.name]
        info = router.call(
            router.traffic.GetTargetGroup, traffic_pb2.GetTargetGroupRequest(name=group)
        ).target_group
        assert [t.instance_name for t in info.targets] == [app.name]
    finally:
        app.stop()


def answer(url: str) -> str:
    """The body of one request through the load balancer ("" when it fails)."""
    try:
        return str(urllib.request.urlopen(url, timeout=5).read().decode().strip())
    except OSError:
        return ""


def test_a_restarted_haproxy_gets_its_servers_back(
    tmp_path: Path, database_url: str, apps: list[App]
) -> None:
    """HAProxy keeps runtime servers in memory only: after a crash and restart the traffic
    service notices the new process and puts back what its records say serves."""
    # Its own backend: the module's earlier target groups (in a shared database) name the
    # same load balancer and instance names, and the traffic service restores them too.
    own = HAProxy(tmp_path / "haproxy", free_port(), backend="restarted")
    own.start()
    server, address = start_server(tmp_path, database_url, env=own.server_env())
    try:
        with client_of(address) as client, client_of(address, service="orchestrator") as ours:
            blue, _ = apps
            group = create_group(client, own.backend)
            allow(client, ours, group, blue)
            assert sample(own.url, 5) == {"blue": 5}
            own.kill()
            own.start()
            wait_until(lambda: answer(own.url) == "blue", 30, "blue to be served again")
        assert "HAProxy restarted; putting its servers back" in server.log.read_text()
    finally:
        server.stop()
        own.stop()
