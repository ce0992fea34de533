"""Outbound webhooks against real HTTP servers on 127.0.0.1: denied addresses are never called
(after DNS resolution), redirects are never followed, secrets in URLs are never shown."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.core.outbound import OutboundPolicy, OutboundRefused, parse_networks, post_json
from services.core.urls import redact_url
from services.orchestrator.triggers import deliver

LOOPBACK_ALLOWED = OutboundPolicy(allowed=parse_networks("test", ["127.0.0.0/8", "::1/128"]))


class Receiver:
    """Records the path of every POST; /redirect answers 302 to /elsewhere."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.paths.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                else:
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


async def test_a_webhook_to_loopback_is_refused_unless_allowed(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    status, error = await deliver(url, "{}", OutboundPolicy())
    assert status == 0
    assert "127.0.0.1 is in the denied range 127.0.0.0/8" in error
    assert receiver.paths == []
    assert await deliver(url, "{}", LOOPBACK_ALLOWED) == (204, None)
    assert receiver.paths == ["/hook"]


async def test_the_check_is_made_on_what_the_name_resolves_to(receiver: Receiver) -> None:
    status, error = await deliver(f"http://localhost:{receiver.port}/hook", "{}", OutboundPolicy())
    assert status == 0
    assert "localhost resolves to" in error
    assert receiver.paths == []


async def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/redirect?token=s3cret"
    status, error = await deliver(url, "{}", LOOPBACK_ALLOWED)
    assert status == 0
    assert "redirects are not followed" in error
    assert "s3cret" not in error
    assert receiver.paths == ["/redirect?token=s3cret"]


@pytest.mark.parametrize(
    ("address", "denied"),
    [
        ("10.1.2.3", True),
        ("169.254.169.254", True),
        ("192.168.0.1", True),
        ("::ffff:127.0.0.1", True),
        ("fd00::1", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1::1", False),
    ],
)
def test_the_default_deny_list(address: str, denied: bool) -> None:
    assert (OutboundPolicy().refusal(address) is not None) is denied


def test_secrets_in_urls_are_redacted() -> None:
    assert (
        redact_url("https://user:pw@hooks.example/x?token=abc&team=ops")
        == "https://REDACTED@hooks.example/x?token=REDACTED&team=REDACTED"
    )
    assert redact_url("https://hooks.example/x") == "https://hooks.example/x"


async def test_a_silent_server_ends_the_call_at_its_deadline() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        with pytest.raises(OutboundRefused, match="no answer within 1s"):
            await post_json(url, b"{}", LOOPBACK_ALLOWED, 1.0, "test")


async def test_an_endless_answer_is_not_read() -> None:
    """Only the status matters: a body of any size (here one that never ends) is never read."""

    class Endless(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()
            with contextlib.suppress(OSError):
                while True:
                    self.wfile.write(bytes(1 << 16))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        assert await post_json(url, b"{}", LOOPBACK_ALLOWED, 5.0, "test") == 200
    finally:
        server.shutdown()
        server.server_close()
