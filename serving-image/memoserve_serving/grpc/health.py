"""``grpc.health.v1.Health`` for Kubernetes gRPC probes (and grpc_health_probe, Envoy...).

SERVING exactly when HTTP's /v2/health/ready says 200: the model is loaded and the server is
not draining. The status is read from the serving state on every call rather than pushed on
each change, since the drain starts in a signal handler (or another thread, in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc  # type: ignore[import-untyped]  # no stubs
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from memoserve_serving.state import ServingState

# The whole server (""), and the one service it serves.
SERVICES = frozenset({"", "inference.GRPCInferenceService"})
# How often a Watch stream looks at the state (a probe's period is seconds).
WATCH_INTERVAL_SECONDS = 0.5
_Status = health_pb2.HealthCheckResponse


class HealthServicer(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(self, state: ServingState) -> None:
        self.state = state
        # Set when the server stops: Watch streams end, instead of holding the graceful stop
        # until its deadline.
        self.stopping = asyncio.Event()

    def status(self, service: str) -> int:
        if service not in SERVICES:
            return int(_Status.SERVICE_UNKNOWN)
        return int(_Status.SERVING if self.state.ready else _Status.NOT_SERVING)

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self.status(request.service)
        if status == _Status.SERVICE_UNKNOWN:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return _Status(status=status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = None
        while True:
            status = self.status(request.service)
            if self.stopping.is_set():
                status = int(_Status.NOT_SERVING)
            if status != last:
                yield _Status(status=status)
                last = status
            if self.stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):  # time to look again
                await asyncio.wait_for(self.stopping.wait(), WATCH_INTERVAL_SECONDS)
