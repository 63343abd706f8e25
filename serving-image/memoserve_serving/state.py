"""What a serving process holds while it runs (the lifespan that fills it: lifespan.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memoserve_contract.settings import ServingSettings
from memoserve_serving.cache.base import AnswerCache, ReportsProblem
from memoserve_serving.dataplane import DataPlane
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.protocol.errors import ModelNotFound, ModelNotReady

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing

log = logging.getLogger(__name__)

# In-flight requests (HTTP and gRPC) get this long to finish once the drain period is over.
GRACEFUL_SHUTDOWN_SECONDS = 30

Stop = Callable[[float | None], Awaitable[None]]
"""Stops a listener beside HTTP's: refuse new work, give the running work ``grace`` seconds
(None: cancel it). Idempotent; a later call with a shorter grace ends it sooner."""

CacheFactory = Callable[[ServingSettings, ServingMetrics], AnswerCache | None]
"""Opens the answer cache for a server (None: serve uncached); ``lifespan.open_cache`` by
default."""


@dataclass(slots=True)
class ServingState:
    """Shared by the routes. ``dataplane`` is set once the model is loaded."""

    settings: ServingSettings
    metrics: ServingMetrics
    dataplane: DataPlane | None = None
    draining: bool = False  # SIGTERM received: report not ready, keep answering
    grpc_port: int | None = None  # the gRPC port bound, while gRPC serves (grpc_enabled)
    # Listeners beside HTTP's (the gRPC server), stopped when HTTP stops accepting.
    stops: list[Stop] = field(default_factory=list)
    cache: AnswerCache | None = None  # the data plane's cache, for its health
    tracing: Tracing | None = None  # OpenTelemetry traces, when the OTEL_* variables ask
    assembled: asyncio.Event = field(default_factory=asyncio.Event)  # set with dataplane

    @property
    def ready(self) -> bool:
        return self.dataplane is not None and not self.draining

    def cache_problem(self) -> str | None:
        """What keeps the cache from working (e.g. no IAM access token), if the cache knows."""
        cache = self.cache
        return cache.problem if isinstance(cache, ReportsProblem) else None

    def dataplane_for(self, model: str, version: str | None) -> DataPlane:
        """The data plane serving ``model`` (at ``version``, if given): 404 or 503 otherwise."""
        settings = self.settings
        if model != settings.model_name:
            raise ModelNotFound(f"unknown model {model!r}")
        if version is not None and version != settings.model_version:
            raise ModelNotFound(f"model {model!r} has no version {version!r}")
        if self.dataplane is None:
            raise ModelNotReady(f"model {model!r} is not ready")
        return self.dataplane
