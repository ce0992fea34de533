"""Errors raised by the client SDK."""

from __future__ import annotations

import grpc


class ClientError(Exception):
    """Base of the SDK's errors; the message is one line meant for people."""


class ApiError(ClientError):
    """The server refused a call; `code` is the gRPC status name (NOT_FOUND, …)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(
            f"An error occurred ({code}) when calling the {operation} operation: {message}"
        )
        self.operation = operation
        self.code = code
        self.message = message

    @classmethod
    def from_rpc(cls, operation: str, error: grpc.RpcError) -> ApiError:
        code = error.code()
        details = error.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            details = f"cannot reach the OpenDeploy endpoint ({details.splitlines()[0]})"
        return cls(operation, code.name, details)
