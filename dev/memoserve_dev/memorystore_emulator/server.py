"""The emulator process: the Memorystore for Redis backend behind a REST port and a gRPC port;
Memorystore for Valkey and Memorystore for Redis Cluster (gRPC only) on the same gRPC port.

``memoserve dev memorystore-emulator --port P`` serves REST on P and gRPC on ``--grpc-port``
(default P+1); point the operator at the gRPC port with
``MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT=HOST:GRPC_PORT``, and a REST client (curl, or
google-cloud-redis with transport="rest") at ``http://HOST:P``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from memoserve_dev.memorystore_emulator.backend import Backend
from memoserve_dev.memorystore_emulator.cluster_api import ClusterFlavor
from memoserve_dev.memorystore_emulator.faults import Faults
from memoserve_dev.memorystore_emulator.grpc_api import start_grpc
from memoserve_dev.memorystore_emulator.grpc_managed import managed_handlers
from memoserve_dev.memorystore_emulator.managed import ManagedBackend
from memoserve_dev.memorystore_emulator.psc import ServiceConnectionPolicies
from memoserve_dev.memorystore_emulator.rest_api import make_app
from memoserve_dev.memorystore_emulator.valkey_api import ValkeyFlavor
from memoserve_dev.redis_server import redis_server_binary


class Emulator:
    """Start with ``async with Emulator(...) as emulator`` (ports 0: free ones)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        grpc_port: int = 0,
        data_dir: Path | None = None,
        faults: Faults | None = None,
        policies: ServiceConnectionPolicies | None = None,
    ) -> None:
        self.host, self._port, self._grpc_port = host, port, grpc_port
        self.data_dir = data_dir
        self.faults = faults or Faults()
        self.policies = policies or ServiceConnectionPolicies()
        self.port = self.grpc_port = 0
        self._tmp: Path | None = None
        self._runner: web.AppRunner | None = None
        self._grpc: Any = None
        self.backend: Backend | None = None
        self.valkey: ManagedBackend | None = None  # Memorystore for Valkey
        self.cluster: ManagedBackend | None = None  # Memorystore for Redis Cluster

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    async def start(self) -> None:
        redis_server_binary()  # fail now, not at the first create
        if self.data_dir is None:
            made = await asyncio.to_thread(tempfile.mkdtemp, prefix="memorystore-emulator-")
            self._tmp = workdir = Path(made)
            state_file = None
        else:
            workdir = self.data_dir
            workdir.mkdir(parents=True, exist_ok=True)
            state_file = workdir / "state.json"
        self.backend = backend = Backend(workdir, self.faults, self.host, state_file)
        await backend.load()
        # One operations store and one call counter for the three APIs.
        self.valkey, self.cluster = (
            ManagedBackend(
                flavor, workdir / name, self.faults, backend.operations, self.policies,
                self.host, backend.calls,
            )
            for name, flavor in (("valkey", ValkeyFlavor()), ("cluster", ClusterFlavor()))
        )  # fmt: skip
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(make_app(self.backend), access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        grpc_port = self._grpc_port if self._grpc_port or not self._port else self._port + 1
        more = managed_handlers(self.valkey, self.cluster)
        self._grpc, self.grpc_port = await start_grpc(backend, self.host, grpc_port, more)

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(grace=0.5)
        if self._runner is not None:
            await self._runner.cleanup()
        for managed in (self.valkey, self.cluster):
            if managed is not None:
                await managed.close()
        if self.backend is not None:
            await self.backend.close()
        if self._tmp is not None:
            await asyncio.to_thread(shutil.rmtree, self._tmp, ignore_errors=True)

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(emulator: Emulator, announce: Any = print) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with emulator:
        announce(
            f"Memorystore emulator: REST {emulator.rest_url}, gRPC {emulator.grpc_target} "
            "(Redis v1 on both; Valkey v1 and Redis Cluster v1 on gRPC)\n"
            f"  operator: MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT={emulator.grpc_target}\n"
            f"  faults:   curl -X POST {emulator.rest_url}/emulator/v1/faults "
            """-d '{"method": "CreateInstance", "code": "PERMISSION_DENIED"}'"""
        )
        await stop.wait()
