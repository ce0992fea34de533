"""Every RPC of every service is served, and empty requests get a clear status, never INTERNAL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from deploy.v1 import agent_pb2, fleet_pb2, orchestrator_pb2, registry_pb2, traffic_pb2
from tests.harness import channel_to, start_server
from tests.processes import Process

FILES = [registry_pb2, fleet_pb2, agent_pb2, orchestrator_pb2, traffic_pb2]
METHODS = [
    (service.full_name, method)
    for module in FILES
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
# Calls that legitimately stay open (push streams) end with our deadline.
OPEN_STREAMS = {"WatchCommandUpdates", "WatchInstanceChanges"}
ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process: Process
    # Authentication off: the servicers' own answers to empty requests, internal RPCs' too
    # (with it on they refuse every user first; test_auth covers that).
    process, address = start_server(tmp_path_factory.mktemp("surface"), "", auth=False)
    try:
        yield address
    finally:
        process.stop()


def _message(name: str) -> type:
    return GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(name))


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[f"{s}.{m.name}" for s, m in METHODS])
def test_rpc_is_served_and_rejects_empty_requests_clearly(
    server: str, service: str, method: object, tmp_path: Path
) -> None:
    request_class = _message(method.input_type.full_name)  # type: ignore[attr-defined]
    response_class = _message(method.output_type.full_name)  # type: ignore[attr-defined]
    path = f"/{service}/{method.name}"  # type: ignore[attr-defined]
    kwargs = {
        "request_serializer": request_class.SerializeToString,
        "response_deserializer": response_class.FromString,
    }
    streaming_in = method.client_streaming  # type: ignore[attr-defined]
    streaming_out = method.server_streaming  # type: ignore[attr-defined]
    with channel_to(server) as channel:
        if streaming_in and streaming_out:
            call = channel.stream_stream(path, **kwargs)(iter([request_class()]), timeout=5)
        elif streaming_in:
            call = channel.stream_unary(path, **kwargs).future(iter([request_class()]), timeout=5)
        elif streaming_out:
            call = channel.unary_stream(path, **kwargs)(request_class(), timeout=1)
        else:
            call = channel.unary_unary(path, **kwargs).future(request_class(), timeout=5)
        try:
            if streaming_out:
                list(call)
            else:
                call.result()
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            details = error.details() or ""
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                assert details, f"{path} gave {code.name} without a message"
    if method.name in OPEN_STREAMS:  # type: ignore[attr-defined]
        assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    else:
        assert code in ACCEPTABLE, f"{path} answered {code.name}"


def test_reflection_lists_every_service(server: str) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with channel_to(server) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        response = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
    names = {s.name for s in response.list_services_response.service}
    expected = {s for s, _ in METHODS} | {"grpc.health.v1.Health"}
    assert expected <= names


def test_sigterm_shuts_the_server_down_cleanly(tmp_path: Path) -> None:
    process, _ = start_server(tmp_path, "")
    process.popen.terminate()
    assert process.popen.wait(15) == 0
    assert "deploy-server stopping" in process.log.read_text()
