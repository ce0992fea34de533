"""The /metrics HTTP endpoint of a server or an agent (prometheus_client's, in its own thread,
so a scrape never waits on the event loop)."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def serve_metrics(listen: str) -> int:
    """Serve the default registry on `listen` (host:port; port 0 picks one); returns the port
    it bound. ValueError names a malformed address."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"{listen!r} is not host:port")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
    bound = int(server.server_address[1])
    log.info("metrics listening", extra={"fields": {"address": f"{host}:{bound}"}})
    return bound
