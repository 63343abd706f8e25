"""The gRPC server: on the HTTP server's event loop, over the same serving state.

It is started by the app's lifespan once the data plane exists, and stopped before the data
plane closes. When the drain period after SIGTERM is over, ``server.DrainingServer`` stops it
accepting at the moment HTTP stops accepting; in-flight RPCs get the same grace as in-flight
HTTP requests.

Two transports can serve the plaintext port (``grpc_transport``): ``native`` (the default,
native_front.py: pygrpc-native's front does HTTP/2, gRPC framing, deadlines and cancellation in
Rust, outside the GIL, and ModelInfer runs from its events on this loop; every other method goes
to a grpc.aio server behind it on a Unix socket) and ``aio`` (grpcio's grpc.aio for everything,
the fallback). The native front has no TLS, so the TLS port (``grpc_tls_port``) is always a
grpc.aio server of its own, with the same services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

import grpc  # type: ignore[import-untyped]  # no stubs
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from memoserve_contract.settings import GrpcTransport, ServingSettings
from memoserve_serving.grpc.handlers import (
    MODEL_INFER_PATH,
    SERVICE_NAME,
    add_inference_service,
)
from memoserve_serving.grpc.health import HealthServicer
from memoserve_serving.grpc.infer import ModelInferHandler
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.servicer import InferenceServicer
from memoserve_serving.grpc.upb import check_protobuf_backend
from memoserve_serving.state import ServingState

log = logging.getLogger(__name__)


class GrpcServerError(Exception):
    """The gRPC server could not start (its port is taken, say)."""


class Listener(Protocol):
    """A started gRPC server: grpc.aio's, or the native front (native_front.py)."""

    async def start(self) -> None: ...

    async def stop(self, grace: float | None) -> None: ...


class GrpcServer:
    """Started servers; ``port`` is the bound one (the configured one, or any for 0)."""

    def __init__(
        self,
        servers: list[Listener],
        port: int,
        health: HealthServicer,
        tls_port: int | None = None,
    ) -> None:
        self.servers = servers  # the plaintext port's, then the TLS port's if any
        self.port = port
        self.health = health
        self.tls_port = tls_port  # the TLS port bound, if one was asked for

    async def stop(self, grace: float | None) -> None:
        """Refuse new RPCs (UNAVAILABLE) and give the running ones ``grace`` seconds (None:
        cancel them). Idempotent: a later call with a shorter grace ends it sooner."""
        self.health.stopping.set()
        await asyncio.gather(*(server.stop(grace) for server in self.servers))


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _aio_server(settings: ServingSettings) -> grpc.aio.Server:
    options = [
        # A request past the HTTP body limit is refused (RESOURCE_EXHAUSTED) before it is
        # read whole, as HTTP answers 413.
        ("grpc.max_receive_message_length", settings.max_body_bytes),
        # gRPC sets SO_REUSEPORT by default: a second server on a taken port would share its
        # traffic instead of failing to start. Only several workers of ours share on purpose.
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
    ]
    return grpc.aio.server(options=options)


def _add_services(
    server: grpc.aio.Server, state: ServingState, health: HealthServicer, infer: ModelInferHandler
) -> None:
    add_inference_service(InferenceServicer(state), infer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    # Reflection lets grpcurl work without the .proto. Our messages live in their own
    # descriptor pool (see generate_grpc_stubs.py), so the health service's file joins it.
    pool = pb.DESCRIPTOR.pool
    pool.AddSerializedFile(health_pb2.DESCRIPTOR.serialized_pb)  # adding it again is a no-op
    names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server, pool)


def _plaintext_server(
    state: ServingState, health: HealthServicer, infer: ModelInferHandler
) -> tuple[Listener, int]:
    """The plaintext port's server on the chosen transport, and the port it bound."""
    settings = state.settings
    server = _aio_server(settings)
    _add_services(server, state, health, infer)
    if settings.grpc_transport is GrpcTransport.AIO:
        return server, _listen(server, settings.host, settings.grpc_port, None)
    from memoserve_serving.grpc.native_front import NativeInferServer  # only when chosen

    address = listen_address(settings.host, settings.grpc_port)
    try:
        native = NativeInferServer(
            address,
            MODEL_INFER_PATH,
            infer.handle,
            server,  # behind it, for every other method
            max_receive_bytes=settings.max_body_bytes,
            reuse_port=settings.reuse_port,
        )
    except (OSError, RuntimeError) as exc:  # the port, or the fallback's Unix socket
        raise GrpcServerError(f"gRPC cannot listen on {address}: {exc}") from None
    return native, native.port


async def start_grpc(state: ServingState) -> GrpcServer:
    settings = state.settings
    backend = check_protobuf_backend()
    transport = settings.grpc_transport
    health = HealthServicer(state)
    infer = ModelInferHandler(state)  # one, so that its memo of recent requests is shared
    server, port = _plaintext_server(state, health, infer)
    servers = [server]
    tls_port = None
    if settings.grpc_tls_port is not None:
        tls_server = _aio_server(settings)  # the native front has no TLS
        _add_services(tls_server, state, health, infer)
        credentials = grpc.ssl_server_credentials([read_tls_pair(settings)])
        tls_port = _listen(tls_server, settings.host, settings.grpc_tls_port, credentials)
        servers.append(tls_server)
    started: list[Listener] = []
    try:
        for each in servers:
            await each.start()
            started.append(each)
    except BaseException:
        await asyncio.gather(*(each.stop(None) for each in started))
        raise
    log.info(
        "gRPC listening on %s (%s, protobuf %s)",
        listen_address(settings.host, port),
        transport,
        backend,
    )
    if tls_port is not None:
        log.info("gRPC (TLS) listening on %s (aio)", listen_address(settings.host, tls_port))
    return GrpcServer(servers, port, health, tls_port)


def _listen(server: grpc.aio.Server, host: str, port: int, credentials: object | None) -> int:
    """Bind ``port`` (plaintext, or TLS with ``credentials``); the port bound."""
    address = listen_address(host, port)
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpcio raises for an address it cannot bind
        raise GrpcServerError(f"gRPC cannot listen on {address}: {exc}") from None
    if bound == 0:  # older grpcio returned 0 instead
        raise GrpcServerError(f"gRPC cannot listen on {address}")
    return int(bound)


def read_tls_pair(settings: ServingSettings) -> tuple[bytes, bytes]:
    """(private key, certificate chain) of the TLS gRPC port, as PEM; GrpcServerError, in one
    line, when they cannot be read (``memoserve serve`` checks before it starts)."""
    cert_file, key_file = settings.grpc_tls_cert_file, settings.grpc_tls_key_file
    if cert_file is None or key_file is None:
        raise GrpcServerError("gRPC TLS: grpc_tls_cert_file and grpc_tls_key_file are required")
    try:
        return key_file.read_bytes(), cert_file.read_bytes()
    except OSError as exc:
        raise GrpcServerError(f"gRPC TLS: cannot read the key or certificate: {exc}") from None


@contextlib.asynccontextmanager
async def serving_grpc(state: ServingState, grace: float | None) -> AsyncIterator[GrpcServer]:
    """The gRPC server for ``state``, stopped on exit. While it runs, ``state.grpc_port`` is its
    port and its ``stop`` is among ``state.stops`` (the HTTP server's shutdown calls them)."""
    running = await start_grpc(state)
    state.grpc_port = running.port
    state.stops.append(running.stop)
    try:
        yield running
    finally:
        await running.stop(grace)
        state.stops.remove(running.stop)
        state.grpc_port = None
