"""Where a client connects and how: TLS unless the endpoint says otherwise.

`host:port` and `https://host:port` are reached over TLS, trusting the given certificate
authority (the server's `pki_dir/ca.pem`; without one, the system's roots); `http://host:port`
is plaintext, for a server an operator started with `tls: false` (behind a proxy that
terminates TLS, say). Plaintext is never a fallback: one has to write it.
"""

from __future__ import annotations

from dataclasses import dataclass

PLAINTEXT = "http://"
TLS = "https://"


@dataclass(frozen=True)
class Endpoint:
    target: str
    """host:port, as gRPC takes it."""
    tls: bool


def parse_endpoint(endpoint: str) -> Endpoint:
    """ValueError names an endpoint with a path or another scheme."""
    if endpoint.startswith(PLAINTEXT):
        target, tls = endpoint.removeprefix(PLAINTEXT), False
    else:
        target, tls = endpoint.removeprefix(TLS), True
    target = target.rstrip("/")
    if not target or "/" in target:
        raise ValueError(
            f"endpoint {endpoint!r} must be host:port, https://host:port or http://host:port"
        )
    return Endpoint(target, tls)
