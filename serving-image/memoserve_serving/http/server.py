"""Run the app under uvicorn, with a graceful drain on SIGTERM.

Kubernetes sends SIGTERM and, at about the same time, starts removing the pod from the
Service's endpoints. We keep answering for ``drain_seconds`` while /v2/health/ready says 503
(so load balancers stop sending), then stop accepting connections, let in-flight requests
finish, and exit 0. A second signal exits at once. The gRPC server (started by the app's
lifespan) follows the same steps: its health says NOT_SERVING during the drain, and it stops
accepting when uvicorn does.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from starlette.types import ASGIApp

from memoserve_contract.logs import configure_logging
from memoserve_contract.settings import HttpTransport, ServingSettings
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.grpc.server import GrpcServerError, read_tls_pair
from memoserve_serving.http.app import create_app
from memoserve_serving.http.http_protocol import HttpProtocol
from memoserve_serving.http.infer_route import InferRoute
from memoserve_serving.http.sockets import reuse_port_socket
from memoserve_serving.lifespan import load_served_model
from memoserve_serving.state import GRACEFUL_SHUTDOWN_SECONDS, CacheFactory, ServingState
from memoserve_serving.storage import ModelLoadError

if TYPE_CHECKING:
    from memoserve_serving.http.granian_server import GranianServer

log = logging.getLogger(__name__)

# The kubelet keeps at most 4096 bytes of a termination message (and 12 KiB for all containers).
MAX_TERMINATION_MESSAGE = 1024


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        state: ServingState,
        on_started: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.state = state
        # Called with the bound port once the server listens and the model is ready (a cache
        # front connects to its upstream after the listen): the CLI's banner means "POST now".
        self.on_started = on_started
        self.drain_deadline: float | None = None
        self._announcing: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self._announcing = asyncio.create_task(self._announce(self.on_started))

    async def _announce(self, on_started: Callable[[int], None]) -> None:
        await self.state.assembled.wait()
        on_started(self.bound_port)

    @property
    def bound_port(self) -> int:
        """The port listened on (the configured one, or the one picked for port 0)."""
        for server in getattr(self, "servers", []):  # set by startup()
            for sock in server.sockets:
                port: int = sock.getsockname()[1]
                return port
        return self.config.port

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_deadline is not None or self.should_exit:
            super().handle_exit(sig, frame)  # second signal: stop now
            return
        self.state.draining = True
        self.drain_deadline = time.monotonic() + self.state.settings.drain_seconds
        log.info(
            "%s received: draining for %.1fs",
            signal.Signals(sig).name,
            self.state.settings.drain_seconds,
        )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # The other listeners (gRPC) stop accepting when HTTP does, and their in-flight calls
        # finish while HTTP's do; the lifespan, after this, finds them stopped.
        stops = list(self.state.stops)
        grace = None if self.force_exit else GRACEFUL_SHUTDOWN_SECONDS
        stopping = [asyncio.ensure_future(stop(grace)) for stop in stops]
        await super().shutdown(sockets)
        if self.force_exit:  # a second signal came while waiting: cancel what is left
            await asyncio.gather(*(stop(None) for stop in stops))
        await asyncio.gather(*stopping)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            return True
        return await super().on_tick(counter)


def build_server(
    settings: ServingSettings,
    served: ServedModel | None = None,
    *,
    cache_factory: CacheFactory | None = None,
    on_started: Callable[[int], None] | None = None,
) -> DrainingServer | GranianServer:
    """The server for ``settings`` (``http_transport``); see :func:`create_app` for ``served``
    and ``cache_factory``, and :class:`DrainingServer` for ``on_started``."""
    app = create_app(settings, served=served, cache_factory=cache_factory)
    return server_for(app, settings, on_started)


def server_for(
    app: InferRoute, settings: ServingSettings, on_started: Callable[[int], None] | None = None
) -> DrainingServer | GranianServer:
    """The server ``settings.http_transport`` names, serving ``app`` (tests that start a server
    in a thread use it too)."""
    if settings.http_transport is HttpTransport.GRANIAN:
        # Imported here: granian is loaded only by a server that runs it.
        from memoserve_serving.http.granian_server import GranianServer

        return GranianServer(app, settings, on_started)
    return DrainingServer(uvicorn_config(app, settings), app.state, on_started)


def uvicorn_config(app: ASGIApp, settings: ServingSettings) -> uvicorn.Config:
    """How memoserve runs uvicorn (tests that start a server in a thread use it too)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=HttpProtocol,  # uvicorn's httptools protocol, one write per response
        ws="none",  # nothing here speaks WebSocket
        lifespan="on",
        access_log=False,  # per-request logs would cost more than a cache hit
        log_config=None,  # ours (configure_logging)
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def write_termination_message(path: Path | None, reason: str) -> None:
    """Why the process exits, in one line, where Kubernetes reads it (the container's
    terminationMessagePath): the kubelet puts it in the pod's status, the operator in the
    InferenceService's ModelReady condition. Best effort: exiting matters more."""
    if path is None:
        return
    line = " ".join(reason.split())[:MAX_TERMINATION_MESSAGE]
    try:
        path.write_text(line + "\n")
    except OSError as exc:
        log.warning("cannot write the termination message to %s: %s", path, exc)


def run_server(settings: ServingSettings) -> None:
    """Load the model (a cache front: none), then serve until SIGTERM, in this process (several
    workers: ``workers.run_workers``, which runs this in each). A model that cannot load exits 1,
    one line."""
    configure_logging(settings.log_level, settings.log_format)
    # Loading before the port opens: a pod's startupProbe covers long downloads, and a model
    # that cannot load is a clear, immediate failure instead of a server that is never ready.
    try:
        if settings.grpc_enabled and settings.grpc_tls_port is not None:
            read_tls_pair(settings)  # before a long model download, not after
        # A cache front loads no model: it connects to its upstream once it listens.
        served = load_served_model(settings) if settings.upstream_url is None else None
    except (ModelLoadError, GrpcServerError) as exc:
        reason = str(exc)
        if isinstance(exc, ModelLoadError):
            reason = f"cannot load model {settings.model_name}: {exc}"
        log.error("%s", reason)
        write_termination_message(settings.termination_log, reason)
        raise SystemExit(1) from None
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise take tens of ms on a big heap and eat the Redis timeout.
    gc.freeze()
    server = build_server(settings, served)
    if isinstance(server, DrainingServer):
        reuse = settings.reuse_port
        sockets = [reuse_port_socket(settings.host, settings.port)] if reuse else None
        server.run(sockets)  # exits 3 if the lifespan fails to start
        return
    from memoserve_serving.http.granian_server import GranianError, StartupFailed

    try:
        server.run()  # granian binds its socket itself, with SO_REUSEPORT
    except StartupFailed as exc:  # as uvicorn: the cause in the log, exit 3
        log.error("application startup failed: %s", exc)
        raise SystemExit(3) from None
    except GranianError as exc:
        log.error("%s", exc)
        write_termination_message(settings.termination_log, str(exc))
        raise SystemExit(1) from None
