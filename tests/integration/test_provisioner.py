"""Provisioners as configured on a server: a command told what to do through OPENDEPLOY_*
variables, and a webhook that receives the same facts as JSON; failures name the provisioner."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services.core.errors import FailedPrecondition, InvalidArgument
from services.core.outbound import OutboundPolicy, parse_networks
from services.core.tags import Tag
from services.orchestrator.provisioner import Provisioner, Provisioners, ProvisionRequest

REQUEST = ProvisionRequest("d-ABCDEFGHI", "shop", "web")
LOOPBACK_ALLOWED = OutboundPolicy(allowed=parse_networks("test", ["127.0.0.0/8"]))


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204 if self.path == "/ok" else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


async def test_a_command_is_told_what_to_start_and_what_to_stop(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    command = (
        f'echo "$OPENDEPLOY_ACTION|$OPENDEPLOY_COUNT|$OPENDEPLOY_TAGS|$OPENDEPLOY_INSTANCES|'
        f'$OPENDEPLOY_DEPLOYMENT_ID|$OPENDEPLOY_DEPLOYMENT_GROUP_NAME" >> {out}'
    )
    provisioners = Provisioners({"local": Provisioner("local", command=command)})
    await provisioners.provision(
        "local", REQUEST, 2, [Tag("cluster", "web"), Tag("opendeploy:deployment", "d-ABCDEFGHI")]
    )
    await provisioners.terminate("local", REQUEST, ["web-1", "web-2"])
    assert out.read_text().splitlines() == [
        "provision|2|cluster=web,opendeploy:deployment=d-ABCDEFGHI||d-ABCDEFGHI|web",
        "terminate|0||web-1 web-2|d-ABCDEFGHI|web",
    ]


async def test_a_failing_command_fails_with_its_output() -> None:
    provisioners = Provisioners(
        {"broken": Provisioner("broken", command="echo 'no capacity left' >&2; exit 3")}
    )
    with pytest.raises(FailedPrecondition) as error:
        await provisioners.provision("broken", REQUEST, 1, [])
    assert "'broken' provision exited 3: no capacity left" in str(error.value)


async def test_a_webhook_gets_the_facts_as_json(
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    provisioners = Provisioners(
        {"cloud": Provisioner("cloud", url=f"{url}/ok"), "down": Provisioner("down", url=url)},
        LOOPBACK_ALLOWED,
    )
    await provisioners.provision("cloud", REQUEST, 3, [Tag("role", "web")])
    assert received == [
        {
            "action": "provision",
            "count": 3,
            "tags": {"role": "web"},
            "deploymentId": "d-ABCDEFGHI",
            "applicationName": "shop",
            "deploymentGroupName": "web",
        }
    ]
    with pytest.raises(FailedPrecondition) as error:
        await provisioners.terminate("down", REQUEST, ["web-1"])
    assert "'down' terminate" in str(error.value)


def test_only_configured_provisioners_are_accepted() -> None:
    provisioners = Provisioners({"local": Provisioner("local", command="true")})
    provisioners.require("provisionerName", "local")
    with pytest.raises(InvalidArgument) as error:
        provisioners.require("provisionerName", "elsewhere")
    assert "provisionerName 'elsewhere'" in str(error.value)


async def test_a_webhook_on_a_denied_address_is_not_called(
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    provisioners = Provisioners({"cloud": Provisioner("cloud", url=f"{url}/ok?key=s3cret")})
    with pytest.raises(FailedPrecondition) as error:
        await provisioners.provision("cloud", REQUEST, 1, [])
    assert "127.0.0.1 is in the denied range 127.0.0.0/8" in str(error.value)
    assert "s3cret" not in str(error.value)
    assert received == []
