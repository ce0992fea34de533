"""Addresses that go into a load balancer's runtime API (IPs and strict hostnames only), and
the target groups a load balancer can use."""

from __future__ import annotations

import pytest

from services.core.errors import InvalidArgument
from services.traffic.domain import Provider, TargetGroup, check_host, split_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.5:8080", ("10.0.0.5", 8080)),
        ("[::1]:80", ("::1", 80)),
        ("web-1.internal:65535", ("web-1.internal", 65535)),
    ],
)
def test_good_addresses_split(address: str, expected: tuple[str, int]) -> None:
    assert split_address("address", address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5;del server web/x:80",
        "10.0.0.5 weight 0:80",
        "host:0",
        "host:65536",
        "host:080000",
        "::1:80",
        "-x:80",
        "a..b:80",
        ":80",
        "host",
    ],
)
def test_bad_addresses_are_refused_naming_the_field(address: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^address"):
        split_address("address", address)


@pytest.mark.parametrize("host", ["x" * 64, "a_b", "a b", "", "1.2.3.4\n"])
def test_bad_hosts_are_refused(host: str) -> None:
    with pytest.raises(InvalidArgument, match="host"):
        check_host("host", host)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        (TargetGroup("g", Provider.NONE, 0), "port: 0 is not a TCP port"),
        (TargetGroup("g", Provider.NONE, 80, -1), "deregistrationDelaySeconds: -1 is not in"),
        (TargetGroup("g", Provider.HAPROXY, 80), "loadBalancer is required with provider"),
        (
            TargetGroup("g", Provider.HAPROXY, 80, load_balancer="lb", haproxy_backend="a b"),
            "haproxy.backend 'a b' is not a valid name",
        ),
    ],
)
def test_an_unusable_target_group_is_refused_naming_the_field(
    group: TargetGroup, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        group.check()


def test_a_group_without_a_load_balancer_needs_only_a_port() -> None:
    group = TargetGroup("g", Provider.NONE, 8080)
    assert group.check() is group
