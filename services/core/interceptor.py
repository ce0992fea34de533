"""One server interceptor for every service: domain errors → gRPC status, and per-RPC metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from services.core.access import CALLER, Admission, Gate
from services.core.errors import DeployError, status_for, translate_foreign
from services.core.metrics import GRPC_HANDLED, GRPC_SECONDS

log = logging.getLogger(__name__)


class _Outcome:
    """Measures one RPC and maps what it raised to a status code."""

    def __init__(self, method: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self.service, self.method = service, name
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()

    async def fail(self, context: aio.ServicerContext[Any, Any], error: BaseException) -> None:
        """Record the status for `error`, abort the call with it when it is ours to map."""
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            # The client went away (a stream it stopped reading is closed with GeneratorExit):
            # there is nobody to answer, and the call must not be touched again.
            self.code = grpc.StatusCode.CANCELLED
            return
        if isinstance(error, aio.AbortError):
            self.code = context.code() or grpc.StatusCode.UNKNOWN
            return
        translated = translate_foreign(error)
        if translated is not None:
            log.warning(
                "a database error answered as a status",
                extra={
                    "fields": {"method": f"{self.service}/{self.method}", "error": str(translated)}
                },
            )
            error = translated
        if isinstance(error, DeployError):
            self.code = status_for(error)
            await context.abort(self.code, str(error))
        self.code = grpc.StatusCode.INTERNAL
        log.exception("unhandled error in %s/%s", self.service, self.method, exc_info=error)
        await context.abort(self.code, f"internal error: {type(error).__name__}")

    def done(self) -> None:
        GRPC_HANDLED.labels(self.service, self.method, self.code.name).inc()
        GRPC_SECONDS.labels(self.service, self.method).observe(time.perf_counter() - self.started)


class _Call:
    """One RPC through the interceptor: admitted by the gate (when authentication is on),
    measured, its errors mapped, audited."""

    def __init__(self, gate: Gate | None, method: str, streamed_request: bool) -> None:
        self.gate = gate
        self.method = method
        self.streamed_request = streamed_request

    async def admit(self, request: Any, context: aio.ServicerContext[Any, Any]) -> Admission | None:
        if self.gate is None:
            return None
        metadata = dict(context.invocation_metadata() or ())
        body = None if self.streamed_request else request
        admission = await self.gate.admit(self.method, body, metadata)
        CALLER.set(admission)
        return admission

    async def audit(self, outcome: _Outcome, admission: Admission | None, peer: str) -> None:
        """`peer` was read while the call was alive: once a client has gone, its context must
        not be touched (the call's memory may be gone with it)."""
        if self.gate is not None and admission is not None:
            await self.gate.audit(admission, outcome.code.name, peer)


def _wrap_unary(call: _Call, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    async def handler(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        outcome, peer = _Outcome(call.method), context.peer()
        admission = None
        try:
            admission = await call.admit(request, context)
            if admission is not None and admission.refused is not None:
                raise admission.refused
            return await behavior(request, context)
        except BaseException as error:
            await outcome.fail(context, error)
            raise
        finally:
            outcome.done()
            await call.audit(outcome, admission, peer)

    return handler


def _wrap_stream(call: _Call, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
    async def handler(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        outcome, peer = _Outcome(call.method), context.peer()
        admission = None
        try:
            admission = await call.admit(request, context)
            if admission is not None and admission.refused is not None:
                raise admission.refused
            async for response in behavior(request, context):
                yield response
        except BaseException as error:
            await outcome.fail(context, error)
            raise
        finally:
            outcome.done()
            await call.audit(outcome, admission, peer)

    return handler


class ServiceInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler so that admission (`gate`: authentication and authorization, None
    when authentication is off), errors, metrics and the audit are handled in one place."""

    def __init__(self, gate: Gate | None = None) -> None:
        self._gate = gate

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/deploy.v1."):
            return handler
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        single = _Call(self._gate, method, streamed_request=False)
        streamed = _Call(self._gate, method, streamed_request=True)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(single, handler.unary_unary), **codec
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(streamed, handler.stream_unary), **codec
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(single, handler.unary_stream), **codec
            )
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream(streamed, handler.stream_stream), **codec
        )


REFLECTION_PREFIX = "/grpc.reflection."


def is_loopback_peer(peer: str) -> bool:
    """True for a gRPC peer string on loopback ("ipv4:127.0.0.1:5", "ipv6:[::1]:5", "unix:…")."""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        return True
    host = rest.rpartition(":")[0].strip("[]")
    return host == "::1" or host.startswith("127.")


class ReflectionGuard(aio.ServerInterceptor):  # type: ignore[misc]
    """gRPC reflection describes every method: it answers loopback callers only, unless the
    configuration (`reflection_from_anywhere`) says otherwise."""

    def __init__(self, from_anywhere: bool) -> None:
        self._from_anywhere = from_anywhere

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if (
            self._from_anywhere
            or handler is None
            or not handler_call_details.method.startswith(REFLECTION_PREFIX)
        ):
            return handler

        async def refuse(
            requests: Any, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            if not is_loopback_peer(context.peer()):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "gRPC reflection answers loopback callers only (reflection_from_anywhere)",
                )
            async for response in handler.stream_stream(requests, context):
                yield response

        return grpc.stream_stream_rpc_method_handler(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
