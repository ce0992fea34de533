"""Outbound HTTP (webhook triggers, provisioner webhooks): where the server may connect, and the
one POST that honours it.

A URL's host is resolved once; every address it resolves to is checked against the deny list
(loopback, private, link-local — cloud metadata included — unless the operator allows a range)
and the request goes to that checked address, so a DNS answer that changes between check and
connect (rebinding) cannot steer it. Redirects are never followed. URLs are shown and logged
only through `urls.redact_url`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.core.errors import InvalidArgument

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_DENIED_NETWORKS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)
"""Unspecified, private, carrier-grade NAT, loopback, link-local, multicast and reserved ranges
(and IPv4-mapped IPv6, checked as its IPv4 address)."""


def parse_networks(field_name: str, values: Iterable[object]) -> tuple[Network, ...]:
    """CIDR ranges from configuration; InvalidArgument naming the key and the bad value."""
    if isinstance(values, str):
        values = values.split(",")
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise InvalidArgument(
                f"config: {field_name}: {value!r} is not an address range"
            ) from None
    return tuple(networks)


@dataclass(frozen=True)
class OutboundPolicy:
    denied: tuple[Network, ...] = field(
        default_factory=lambda: parse_networks("outbound_denied_networks", DEFAULT_DENIED_NETWORKS)
    )
    allowed: tuple[Network, ...] = ()
    """Ranges allowed although a denied range holds them (e.g. 127.0.0.0/8 for a local cluster)."""

    def refusal(self, address: str) -> str | None:
        """Why the server may not connect to `address`; None when it may."""
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed):
            return None
        denied = next((n for n in self.denied if ip.version == n.version and ip in n), None)
        if denied is not None:
            return f"{ip} is in the denied range {denied} (outbound_allowed_networks allows it)"
        return None


class OutboundRefused(Exception):
    """The URL may not be called: a denied address, a bad URL, or a redirect."""


async def resolve_checked(url: str, policy: OutboundPolicy) -> str:
    """The address to connect to for `url`'s host: every address it resolves to must pass."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundRefused(f"{host}: cannot be resolved ({error})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        refusal = policy.refusal(address)
        if refusal:
            raise OutboundRefused(f"{host} resolves to {refusal}")
    if not addresses:
        raise OutboundRefused(f"{host}: no address")
    return addresses[0]


async def post_json(
    url: str, body: bytes, policy: OutboundPolicy, timeout: float, user_agent: str
) -> int:
    """POST `body` to the checked address of `url`; the HTTP status. Raises OutboundRefused
    (denied address, a redirect, no answer within `timeout`) or httpx.HTTPError (connection)."""
    parts = urlsplit(url)
    address = await resolve_checked(url, policy)
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rpartition("@")[2]
    extensions: dict[str, Any] = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    auth: httpx.Auth | httpx._client.UseClientDefault = (
        httpx.BasicAuth(parts.username, parts.password or "")
        if parts.username
        else httpx.USE_CLIENT_DEFAULT
    )
    headers = {"Host": host_header, "Content-Type": "application/json", "User-Agent": user_agent}
    try:
        async with (
            asyncio.timeout(timeout),  # the whole call: a server that trickles bytes ends too
            httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client,
            client.stream(
                "POST", pinned, content=body, headers=headers, extensions=extensions, auth=auth
            ) as response,  # only the status is read, never the body (it could be any size)
        ):
            status = response.status_code
            redirect = response.is_redirect
    except TimeoutError:
        raise OutboundRefused(f"no answer within {timeout:.0f}s") from None
    if redirect:
        raise OutboundRefused(f"HTTP {status}: redirects are not followed")
    return status
