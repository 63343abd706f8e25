"""Serve the HTTP app with granian (``http_transport: granian``), with the same drain as uvicorn.

granian parses HTTP/1.1 and writes answers in a Rust thread, outside the GIL, and hands each
request to this process's event loop over RSGI (``rsgi_app``): measured side by side, a REST
hit costs about a quarter less CPU than under uvicorn (docs/performance.md). It runs embedded
in this process's loop (granian's ``embed.Server``), after the app's lifespan has started and
before it ends, as uvicorn runs it.

SIGTERM: ``/v2/health/ready`` says 503 for ``drain_seconds`` while requests are still served,
then granian stops accepting and finishes the requests in flight, the gRPC server likewise,
and the lifespan closes the data plane. A second signal ends the drain at once and cancels
what gRPC still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import uvloop
from granian.constants import HTTPModes, Interfaces
from granian.server.embed import Server
from starlette.applications import Starlette

from memoserve_contract.settings import ServingSettings
from memoserve_serving.http.infer_route import InferRoute
from memoserve_serving.http.rsgi_app import RsgiApp
from memoserve_serving.http.sockets import reuse_port_socket
from memoserve_serving.state import GRACEFUL_SHUTDOWN_SECONDS

log = logging.getLogger(__name__)

BACKLOG = 2048  # as the sockets memoserve binds itself


class GranianError(RuntimeError):
    """granian stopped serving without being asked to (e.g. it could not listen)."""


class StartupFailed(RuntimeError):
    """The app's lifespan failed to start (e.g. the gRPC port is taken): nothing was served."""


class GranianServer:
    """granian serving ``app`` for as long as its lifespan runs; the surface of uvicorn's
    ``Server`` that memoserve uses: ``started``, ``handle_exit`` (drain), ``should_exit``."""

    def __init__(
        self,
        app: InferRoute,
        settings: ServingSettings,
        on_started: Callable[[int], None] | None = None,
    ) -> None:
        starlette = app.fallback
        if not isinstance(starlette, Starlette):
            raise TypeError(f"the app behind the infer route is not Starlette: {starlette!r}")
        self.app = app
        self.starlette = starlette
        self.state = app.state
        self.settings = settings
        self.on_started = on_started
        self.started = False
        self.bound_port = settings.port  # the port picked, for port 0, once serving
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._force = False

    @property
    def should_exit(self) -> bool:
        return self._stop.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        """Stop now, without the drain (from any thread)."""
        if value:
            self._call(self._stop.set)

    def handle_exit(self, sig: int, frame: object = None) -> None:
        """A signal: drain, or (a second one) stop now. Callable from any thread."""
        self._call(self._on_signal, signal.Signals(sig))

    def _call(self, callback: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # its loop is closed: the server has stopped
            loop.call_soon_threadsafe(callback, *args)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.state.draining:
            self._force = True
            self._stop.set()
            return
        self.state.draining = True
        log.info("%s received: draining for %.1fs", sig.name, self.settings.drain_seconds)
        asyncio.get_running_loop().call_later(self.settings.drain_seconds, self._stop.set)

    def _serving(self) -> None:
        log.info("HTTP listening on %s:%d (granian)", self.settings.host, self.bound_port)
        self.started = True
        if self.on_started is not None:
            self.on_started(self.bound_port)

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT (then drain), in this thread's new event loop."""
        uvloop.run(self.serve(signals=True))

    async def serve(self, *, signals: bool = False) -> None:
        """Until stopped; ``signals``: SIGTERM and SIGINT drain (the main thread only)."""
        loop = self._loop = asyncio.get_running_loop()
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        lifespan_started = False
        try:
            async with self.starlette.router.lifespan_context(self.starlette):
                lifespan_started = True
                await self._run()
        except Exception as exc:
            if lifespan_started:
                raise
            raise StartupFailed(str(exc)) from exc
        finally:
            if signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    async def _run(self) -> None:
        settings = self.settings
        with contextlib.ExitStack() as held:
            if settings.port == 0:
                # granian binds in each of its workers, so port 0 would be a port of its own in
                # each: pick one here and hold it (bound with SO_REUSEPORT, not listening: no
                # connection lands on it) while granian serves on it.
                picked = held.enter_context(reuse_port_socket(settings.host, 0, listen=False))
                self.bound_port = picked.getsockname()[1]
            await self._serve_on(self.bound_port)

    async def _serve_on(self, port: int) -> None:
        settings = self.settings
        server = Server(
            RsgiApp(self.app, on_serving=self._serving),
            address=settings.host,
            port=port,
            interface=Interfaces.RSGI,
            http=HTTPModes.http1,  # as uvicorn: gRPC has a port of its own
            websockets=False,
            backlog=BACKLOG,
            log_enabled=False,  # ours (configure_logging); granian logs through it
        )
        serving = asyncio.create_task(server.serve(), name="memoserve-granian")
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            stopping.cancel()
            where = f"{settings.host}:{port}"
            try:
                serving.result()
            except (OSError, RuntimeError) as exc:  # granian's bind error is a RuntimeError
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise GranianError(f"HTTP cannot listen on {where}: {first_line}") from None
            raise GranianError(f"granian stopped serving {where} unasked")
        # granian and the other listeners (gRPC) stop accepting together and finish their calls.
        grace = None if self._force else GRACEFUL_SHUTDOWN_SECONDS
        others = [asyncio.ensure_future(stop(grace)) for stop in self.state.stops]
        server.stop()  # type: ignore[no-untyped-call]  # granian does not annotate it
        await serving
        await asyncio.gather(*others)
