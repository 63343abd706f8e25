"""The Memorystore emulator in a thread of its own (its own event loop), so that blocking
clients (google-cloud-redis's sync REST client) and async ones (the operator's gRPC client, in
the test's loop) can both call it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from memoserve_dev.memorystore_emulator.backend import Backend
from memoserve_dev.memorystore_emulator.faults import Faults
from memoserve_dev.memorystore_emulator.managed import ManagedBackend
from memoserve_dev.memorystore_emulator.psc import ServiceConnectionPolicies
from memoserve_dev.memorystore_emulator.server import Emulator

T = TypeVar("T")


class EmulatorThread:
    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        delay: float = 0.2,
        policies: ServiceConnectionPolicies | None = None,
    ) -> None:
        self.faults = Faults(ready_delay=delay, operation_delay=delay)
        self.emulator = Emulator(data_dir=data_dir, faults=self.faults, policies=policies)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    def start(self) -> EmulatorThread:
        self._thread.start()
        self.call(self.emulator.start())
        return self

    def stop(self) -> None:
        self.call(self.emulator.stop(), timeout=120)  # a cluster being started is waited for
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def backend(self) -> Backend:
        assert self.emulator.backend is not None
        return self.emulator.backend

    @property
    def valkey(self) -> ManagedBackend:
        assert self.emulator.valkey is not None
        return self.emulator.valkey

    @property
    def cluster(self) -> ManagedBackend:
        assert self.emulator.cluster is not None
        return self.emulator.cluster

    @property
    def rest_url(self) -> str:
        return self.emulator.rest_url

    @property
    def grpc_target(self) -> str:
        return self.emulator.grpc_target

    def calls(self, method: str) -> int:
        """How many times the emulator was asked ``method`` (e.g. CreateInstance)."""
        return self.backend.calls.get(method, 0)
