"""Run the memoserve app under its real HTTP server (uvicorn, or granian when the settings say)
in a background thread, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import uvloop

from memoserve_contract.settings import ModelFormat, ServingSettings
from memoserve_dev.ports import free_port
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.http.app import create_app
from memoserve_serving.http.infer_route import InferRoute
from memoserve_serving.http.server import server_for
from memoserve_serving.runtimes.base import Model

# Settings every server a test starts gets unless the test says otherwise: the transports, which
# the ``grpc_transport`` and ``http_transport`` fixtures set per parametrised test to run the
# same tests on each (tests/serving/grpc/conftest.py, tests/serving/conftest.py).
DEFAULTS: dict[str, object] = {}


@contextlib.contextmanager
def default_setting(name: str, value: object) -> Iterator[None]:
    """``serving_settings`` uses ``value`` for ``name`` meanwhile."""
    DEFAULTS[name] = value
    try:
        yield
    finally:
        del DEFAULTS[name]


def serving_settings(**overrides: Any) -> ServingSettings:
    values: dict[str, Any] = {
        **DEFAULTS,
        "model_name": "affine",
        "model_uri": "/unused",
        "model_format": ModelFormat.ONNX,
        "port": free_port(),
        "grpc_port": 0,  # any free port: ``ServerThread.grpc_target`` says which
        "host": "127.0.0.1",
        "drain_seconds": 0,
        "log_format": "text",
        "batch_max_size": 1,
        "cache_stats_seconds": 0,  # tests that count Redis commands count only the cache's
        # Production's 50 ms is a loaded 2-vCPU test machine's ordinary stall: a test that wants
        # every answer a hit or a miss would see "error" now and then. Tests of timeouts set it.
        "redis_timeout_ms": 1000,
    }
    values.update(overrides)
    return ServingSettings(**values)


class ServerThread:
    """``with ServerThread(settings, model) as server:`` serves on ``server.url``."""

    def __init__(
        self,
        settings: ServingSettings,
        model: Model | None = None,
        *,
        loop: Literal["asyncio", "uvloop"] = "asyncio",
    ) -> None:
        served = None
        if model is not None:
            digest = hashlib.sha256(type(model).__name__.encode()).hexdigest()
            served = ServedModel(settings.model_name, settings.model_version, digest, model)
        self.app: InferRoute = create_app(settings, served=served)
        self.settings = settings
        # The production configuration; serve() runs on this thread's own event loop, asyncio's
        # unless the test asks for uvloop (which production runs on).
        self.loop = loop
        # The production server, so tests can drive its drain (handle_exit) directly.
        self.server = server_for(self.app, settings)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self.loop == "uvloop":
            uvloop.run(self.server.serve())
        else:
            asyncio.run(self.server.serve())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.bound_port}"

    @property
    def grpc_target(self) -> str:
        port = self.app.state.grpc_port
        assert port is not None, "gRPC is not running (grpc_enabled=False?)"
        return f"127.0.0.1:{port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread died during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
