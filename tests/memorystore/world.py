"""The operator's Memorystore flows through the reconciler, for every engine's tests: the real
Google clients (gRPC) against the emulator, the real Kubernetes client against the fake API
server. ``World.converge`` plays kopf's part: reconcile, and again after the delay asked for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes_asyncio.client import Configuration

from memoserve_dev.memorystore_emulator.psc import ServiceConnectionPolicies
from memoserve_operator.cache.connector import MemorystoreConnector
from memoserve_operator.cache.lifecycle import MemorystoreStep
from memoserve_operator.cache.stats import CacheStatsReader
from memoserve_operator.kube.client import KubeClient
from memoserve_operator.metrics import Metrics
from memoserve_operator.reconcile import ReconcileOutcome, Reconciler
from memoserve_operator.settings import OperatorSettings
from tests.memorystore.emulator_thread import EmulatorThread
from tests.memorystore.helpers import Events, condition, exists, settings_for, stored
from tests.operator.fake_api import ISVC, NAMESPACE, declare_resources
from tests.operator.test_argocd_health import HEALTH_LUA, HealthCheck

HEALTH = HealthCheck(HEALTH_LUA.read_text())


@dataclass
class World:
    api: Any
    emulator: EmulatorThread
    kube: KubeClient
    settings: OperatorSettings
    events: Events
    reconciler: Reconciler
    connectors: list[MemorystoreConnector] = field(default_factory=list)
    stats: CacheStatsReader | None = None  # reads the pods' cache counts when set

    def restart(self) -> None:
        """A new operator process: nothing remembered but what Kubernetes and GCP hold."""
        connector = MemorystoreConnector(self.settings)
        self.connectors.append(connector)
        step = MemorystoreStep(connector, self.kube, self.events)
        self.reconciler = Reconciler(
            self.kube, self.settings, Metrics(), memorystore=step, stats=self.stats
        )

    async def reconcile(self) -> ReconcileOutcome:
        return await self.reconciler.reconcile(NAMESPACE, "iris", trigger="test")

    async def converge(self, until: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while True:
                outcome = await self.reconcile()
                if until():
                    return
                await asyncio.sleep(outcome.retry_after or 0.05)

    def store(self, body: dict[str, Any]) -> None:
        """A spec change, as kubectl apply makes it: metadata and status stay."""
        if exists(self.api, ISVC, "iris"):
            old = json.loads(json.dumps(stored(self.api), default=dict))
            body["metadata"] |= {
                k: old["metadata"][k] for k in ("finalizers", "annotations") if k in old["metadata"]
            }
            body["status"] = old.get("status")
        self.api.objects[ISVC, NAMESPACE, "iris"] = body

    async def converge_release(self, within: float = 10.0) -> list[float]:
        """The InferenceService is being deleted: release until done; the delays asked for."""
        delays = []
        async with asyncio.timeout(within):
            while (delay := await self.reconciler.release(stored(self.api))) is not None:
                delays.append(delay)
                await asyncio.sleep(delay)
        return delays

    def health(self) -> str:
        return str(HEALTH(stored(self.api))["status"])


def cache_ready(world: World) -> bool:
    return condition(world.api)[0] == "True"


async def open_world(kmock: Any, emulator: EmulatorThread) -> World:
    declare_resources(kmock)
    kube = await KubeClient.open(Configuration(host=str(kmock.url)))
    settings = settings_for(emulator)
    created = World(kmock, emulator, kube, settings, Events(), None)  # type: ignore[arg-type]
    created.restart()
    return created


async def close_world(world: World) -> None:
    for connector in world.connectors:
        await connector.close()
    await world.kube.close()


def assert_released(world: World, policy: str, left: list[str], kept: str, command: str) -> None:
    """After the release: Delete left no instance; Retain left ``kept`` and its Event names the
    ``command`` that would delete it."""
    if policy == "Delete":
        assert left == []
        assert world.events.reasons()[-2:] == ["MemorystoreDelete", "MemorystoreDeleted"]
        return
    assert left == [kept]
    assert world.events.reasons()[-1] == "MemorystoreRetained"
    assert command in world.events.posted[-1][2]


@asynccontextmanager
async def world_without_policies(kmock: Any) -> AsyncIterator[tuple[World, Any]]:
    """A world whose emulator knows no service connection policy (none declared, no network
    allowed by default); yields it and the policies, to declare one."""
    policies = ServiceConnectionPolicies(allow_any_network=False)
    emulator = EmulatorThread(policies=policies).start()
    opened = await open_world(kmock, emulator)
    try:
        yield opened, policies
    finally:
        await close_world(opened)
        emulator.stop()


@pytest.fixture
async def world(kmock: Any, emulator: EmulatorThread) -> AsyncIterator[World]:
    opened = await open_world(kmock, emulator)
    yield opened
    await close_world(opened)
