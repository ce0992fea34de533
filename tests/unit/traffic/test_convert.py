"""Traffic requests read and checked at the edge (convert.py), every refusal naming its field."""

from __future__ import annotations

import pytest

from deploy.v1 import traffic_pb2
from services.core.errors import InvalidArgument
from services.traffic.convert import address_from_proto, allowed_from_proto, weights_from_proto


def test_allow_traffic_reads_a_weight_and_an_optional_host() -> None:
    request = traffic_pb2.AllowTrafficRequest(weight=10, host="10.0.0.5")
    assert allowed_from_proto(request) == (10, "10.0.0.5")
    assert allowed_from_proto(traffic_pb2.AllowTrafficRequest(weight=256)) == (256, "")
    with pytest.raises(InvalidArgument, match="weight: must be 1-256"):
        allowed_from_proto(traffic_pb2.AllowTrafficRequest(weight=0))
    with pytest.raises(InvalidArgument, match="weight"):
        allowed_from_proto(traffic_pb2.AllowTrafficRequest(weight=257))
    with pytest.raises(InvalidArgument, match="host"):
        allowed_from_proto(traffic_pb2.AllowTrafficRequest(weight=1, host="a b"))


def test_weights_name_at_least_one_instance_each_with_its_own_field() -> None:
    request = traffic_pb2.SetWeightsRequest(weights={"web-1": 1, "web-2": 100})
    assert weights_from_proto(request) == {"web-1": 1, "web-2": 100}
    with pytest.raises(InvalidArgument, match="at least one instance"):
        weights_from_proto(traffic_pb2.SetWeightsRequest())
    with pytest.raises(InvalidArgument, match=r"weights\[web-2\]"):
        weights_from_proto(traffic_pb2.SetWeightsRequest(weights={"web-1": 1, "web-2": 999}))


def test_an_address_is_host_and_port_or_empty_to_forget_it() -> None:
    assert address_from_proto("") == ""
    assert address_from_proto("10.0.0.5:8080") == "10.0.0.5:8080"
    with pytest.raises(InvalidArgument, match="address"):
        address_from_proto("10.0.0.5")
