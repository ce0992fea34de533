"""The client SDK: one object per endpoint with a typed stub per service, errors as ApiError."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from deploy.credentials import Credentials, SigningInterceptor, load_credentials
from deploy.endpoints import parse_endpoint
from deploy.errors import ApiError, ClientError
from deploy.v1 import (
    common_pb2,
    fleet_pb2,
    fleet_pb2_grpc,
    identity_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    traffic_pb2_grpc,
)

DEFAULT_ENDPOINT = "127.0.0.1:7400"
CHUNK_BYTES = 256 * 1024
TIMEOUT_SECONDS = 30.0
R = TypeVar("R")

TERMINAL = frozenset(
    {
        orchestrator_pb2.DEPLOYMENT_STATUS_SUCCEEDED,
        orchestrator_pb2.DEPLOYMENT_STATUS_FAILED,
        orchestrator_pb2.DEPLOYMENT_STATUS_STOPPED,
    }
)


class DeployClient:
    """Talks to one OpenDeploy endpoint (a deploy-server or the cluster's front door)."""

    def __init__(
        self,
        endpoint: str | None = None,
        ca_file: str | None = None,
        credentials: Credentials | None = None,
        profile: str | None = None,
        interceptors: Sequence[Any] = (),
    ) -> None:
        """`endpoint` (default $DEPLOY_ENDPOINT): host:port over TLS, or http://host:port in
        plaintext (deploy.endpoints); `ca_file` (default $DEPLOY_CA_FILE): the certificate
        authority TLS trusts, else the system's roots. `credentials` (default: found as
        the AWS CLI finds them, deploy.credentials, in `profile` when named) sign every call;
        `interceptors` (gRPC client interceptors) see every call after that."""
        self.endpoint = endpoint or os.environ.get("DEPLOY_ENDPOINT") or DEFAULT_ENDPOINT
        self._channel = _channel(self.endpoint, ca_file or os.environ.get("DEPLOY_CA_FILE"))
        credentials = credentials or load_credentials(profile)
        if credentials is not None:
            self._channel = grpc.intercept_channel(self._channel, SigningInterceptor(credentials))
        if interceptors:
            self._channel = grpc.intercept_channel(self._channel, *interceptors)
        self.registry = registry_pb2_grpc.RevisionRegistryStub(self._channel)
        self.orchestrator = orchestrator_pb2_grpc.OrchestratorStub(self._channel)
        self.fleet = fleet_pb2_grpc.FleetStub(self._channel)
        self.traffic = traffic_pb2_grpc.TrafficRouterStub(self._channel)
        self.identity = identity_pb2_grpc.IdentityStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> DeployClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: Callable[..., R], request: Any) -> R:
        """A unary call with a deadline; gRPC failures become ApiError."""
        path = method._method  # type: ignore[attr-defined]
        name = (path.decode() if isinstance(path, bytes) else path).rsplit("/", 1)[-1]
        try:
            return method(request, timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise ApiError.from_rpc(name, error) from error

    def instances(
        self, request: fleet_pb2.ListOnPremisesInstancesRequest | None = None
    ) -> list[fleet_pb2.InstanceInfo]:
        """Every instance the request matches, page after page."""
        request = request or fleet_pb2.ListOnPremisesInstancesRequest()
        return self._every_page(self.fleet.ListOnPremisesInstances, request, "instances")

    def revisions(
        self, request: registry_pb2.ListApplicationRevisionsRequest
    ) -> list[common_pb2.RevisionLocation]:
        """Every revision the request matches, page after page."""
        return self._every_page(self.registry.ListApplicationRevisions, request, "revisions")

    def _every_page(self, method: Callable[..., Any], request: Any, items: str) -> list[Any]:
        """The `items` of every page of a list call that answers with a next_token."""
        found: list[Any] = []
        while True:
            response = self.call(method, request)
            found.extend(getattr(response, items))
            if not response.next_token:
                return found
            request.next_token = response.next_token

    def upload_bundle(self, path: Path, digest: str) -> registry_pb2.UploadBundleResponse:
        """Stream a bundle file to the registry's store; the server checks the digest."""

        def parts() -> Iterator[registry_pb2.UploadBundleRequest]:
            yield registry_pb2.UploadBundleRequest(
                header=registry_pb2.UploadBundleHeader(
                    bundle_type=common_pb2.BUNDLE_TYPE_ZIP, expected_digest=digest
                )
            )
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield registry_pb2.UploadBundleRequest(chunk=chunk)

        try:
            response: registry_pb2.UploadBundleResponse = self.registry.UploadBundle(parts())
            return response
        except grpc.RpcError as error:
            raise ApiError.from_rpc("UploadBundle", error) from error

    def watch_deployment(
        self, deployment_id: str, timeout: float | None = None, summary_only: bool = False
    ) -> Iterator[orchestrator_pb2.WatchDeploymentResponse]:
        """The deployment and its targets (`summary_only`: the deployment only) after every
        change, until it finishes (pushed)."""
        try:
            yield from self.orchestrator.WatchDeployment(
                orchestrator_pb2.WatchDeploymentRequest(
                    deployment_id=deployment_id, summary_only=summary_only
                ),
                timeout=timeout,
            )
        except grpc.RpcError as error:
            raise ApiError.from_rpc("WatchDeployment", error) from error

    def watch_deployment_logs(
        self, deployment_id: str, target_id: str = "", follow: bool = False
    ) -> Iterator[orchestrator_pb2.HookOutputLine]:
        """The hook output agents streamed for the deployment (one target's, when named); with
        `follow`, new lines as they are written, until the deployment ends."""
        try:
            for response in self.orchestrator.WatchDeploymentLogs(
                orchestrator_pb2.WatchDeploymentLogsRequest(
                    deployment_id=deployment_id, target_id=target_id, follow=follow
                )
            ):
                yield from response.lines
        except grpc.RpcError as error:
            raise ApiError.from_rpc("WatchDeploymentLogs", error) from error


def _channel(endpoint: str, ca_file: str | None) -> grpc.Channel:
    try:
        where = parse_endpoint(endpoint)
    except ValueError as error:
        raise ClientError(str(error)) from None
    if not where.tls:
        return grpc.insecure_channel(where.target)
    authority = None  # the system's roots
    if ca_file:
        try:
            authority = Path(ca_file).read_bytes()
        except OSError as error:
            raise ClientError(f"cannot read the CA file {ca_file}: {error.strerror}") from None
    credentials = grpc.ssl_channel_credentials(root_certificates=authority)
    return grpc.secure_channel(where.target, credentials)
