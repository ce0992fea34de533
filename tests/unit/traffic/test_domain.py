"""Addresses that go into a load balancer's runtime API: IPs and strict hostnames only."""

from __future__ import annotations

import pytest

from services.core.errors import InvalidArgument
from services.traffic.domain import check_host, split_address


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
