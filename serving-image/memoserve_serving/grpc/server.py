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

from memoserve_serving.grpc.health import HealthServicer
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import (
    add_GRPCInferenceServiceServicer_to_server,
)
from memoserve_serving.grpc.servicer import InferenceServicer
from memoserve_serving.state import ServingState

log = logging.getLogger(__name__)

SERVICE_NAME = "inference.GRPCInferenceService"


class GrpcServerError(Exception):
    """The gRPC server could not start (its port is taken, say)."""


class GrpcServer:
    """A started server; ``port`` is the bound one (the configured one, or any for 0)."""

    def __init__(self, server: grpc.aio.Server, port: int, health: HealthServicer) -> None:
        self.server = server
        self.port = port
        self.health = health

    async def stop(self, grace: float | None) -> None:
        """Refuse new RPCs (UNAVAILABLE) and give the running ones ``grace`` seconds (None:
        cancel them). Idempotent: a later call with a shorter grace ends it sooner."""
        self.health.stopping.set()
        await self.server.stop(grace)


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_grpc(state: ServingState) -> GrpcServer:
    settings = state.settings
    server = grpc.aio.server(
        options=[
            # A request past the HTTP body limit is refused (RESOURCE_EXHAUSTED) before it is
            # read whole, as HTTP answers 413.
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            # gRPC sets SO_REUSEPORT by default: a second server on a taken port would share its
            # traffic instead of failing to start.
            ("grpc.so_reuseport", 0),
        ]
    )
    servicer = InferenceServicer(state)
    add_GRPCInferenceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health = HealthServicer(state)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    # Reflection lets grpcurl work without the .proto. Our messages live in their own
    # descriptor pool (see generate_grpc_stubs.py), so the health service's file joins it.
    pool = pb.DESCRIPTOR.pool
    pool.AddSerializedFile(health_pb2.DESCRIPTOR.serialized_pb)
    names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server, pool)
    address = listen_address(settings.host, settings.grpc_port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio raises for an address it cannot bind
        raise GrpcServerError(f"gRPC cannot listen on {address}: {exc}") from None
    if port == 0:  # older grpcio returned 0 instead
        raise GrpcServerError(f"gRPC cannot listen on {address}")
    await server.start()
    log.info("gRPC listening on %s", listen_address(settings.host, port))
    return GrpcServer(server, port, health)


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
