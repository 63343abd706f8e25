"""The grpc.aio server: on the HTTP server's event loop, over the same serving state.

It is started by the app's lifespan once the data plane exists, and stopped before the data
plane closes. When the drain period after SIGTERM is over, ``server.DrainingServer`` stops it
accepting at the moment HTTP stops accepting; in-flight RPCs get the same grace as in-flight
HTTP requests.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import grpc  # type: ignore[import-untyped]  # no stubs
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from memoserve_contract.settings import ServingSettings
from memoserve_serving.grpc.handlers import SERVICE_NAME, add_inference_service
from memoserve_serving.grpc.health import HealthServicer
from memoserve_serving.grpc.infer import ModelInferHandler
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.servicer import InferenceServicer
from memoserve_serving.grpc.upb import check_protobuf_backend
from memoserve_serving.state import ServingState

log = logging.getLogger(__name__)


class GrpcServerError(Exception):
    """The gRPC server could not start (its port is taken, say)."""


class GrpcServer:
    """A started server; ``port`` is the bound one (the configured one, or any for 0)."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        health: HealthServicer,
        tls_port: int | None = None,
    ) -> None:
        self.server = server
        self.port = port
        self.health = health
        self.tls_port = tls_port  # the TLS port bound, if one was asked for

    async def stop(self, grace: float | None) -> None:
        """Refuse new RPCs (UNAVAILABLE) and give the running ones ``grace`` seconds (None:
        cancel them). Idempotent: a later call with a shorter grace ends it sooner."""
        self.health.stopping.set()
        await self.server.stop(grace)


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_grpc(state: ServingState) -> GrpcServer:
    settings = state.settings
    backend = check_protobuf_backend()
    server = grpc.aio.server(
        options=[
            # A request past the HTTP body limit is refused (RESOURCE_EXHAUSTED) before it is
            # read whole, as HTTP answers 413.
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            # gRPC sets SO_REUSEPORT by default: a second server on a taken port would share its
            # traffic instead of failing to start. Only several workers of ours share on purpose.
            ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ]
    )
    servicer = InferenceServicer(state)
    add_inference_service(servicer, ModelInferHandler(state), server)
    health = HealthServicer(state)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    # Reflection lets grpcurl work without the .proto. Our messages live in their own
    # descriptor pool (see generate_grpc_stubs.py), so the health service's file joins it.
    pool = pb.DESCRIPTOR.pool
    pool.AddSerializedFile(health_pb2.DESCRIPTOR.serialized_pb)
    names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server, pool)
    port = _listen(server, settings.host, settings.grpc_port, None)
    tls_port = None
    if settings.grpc_tls_port is not None:
        credentials = grpc.ssl_server_credentials([read_tls_pair(settings)])
        tls_port = _listen(server, settings.host, settings.grpc_tls_port, credentials)
    await server.start()
    log.info("gRPC listening on %s (protobuf %s)", listen_address(settings.host, port), backend)
    if tls_port is not None:
        log.info("gRPC (TLS) listening on %s", listen_address(settings.host, tls_port))
    return GrpcServer(server, port, health, tls_port)


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
    """The gRPC server for ``state`` (``state.grpc`` while it runs), stopped on exit."""
    running = await start_grpc(state)
    state.grpc = running
    try:
        yield running
    finally:
        await running.stop(grace)
        state.grpc = None
