"""The Memorystore API clients the operator keeps for its lifetime (kopf's memo): one per
engine (Memorystore for Redis, for Valkey, for Redis Cluster).

Each is opened on first use: an operator whose services never ask for one neither imports its
Google library nor needs Google credentials. One endpoint setting
(``MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT``) points all three at an emulator: memoserve's
serves the three APIs on one gRPC port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from memoserve_operator.cache.gcp import InstanceApi
from memoserve_operator.cache.memorystore.api import MemorystoreApi
from memoserve_operator.settings import OperatorSettings

Opener = Callable[[OperatorSettings], Awaitable[InstanceApi[Any]]]


async def open_redis(settings: OperatorSettings) -> InstanceApi[Any]:
    from memoserve_operator.cache.memorystore.google import open_memorystore

    return await open_memorystore(settings.memorystore_endpoint)


async def open_valkey(settings: OperatorSettings) -> InstanceApi[Any]:
    from memoserve_operator.cache.sharded.valkey import open_valkey as opener

    return await opener(settings.memorystore_endpoint)


async def open_redis_cluster(settings: OperatorSettings) -> InstanceApi[Any]:
    from memoserve_operator.cache.sharded.cluster import open_redis_cluster as opener

    return await opener(settings.memorystore_endpoint)


OPENERS: Mapping[str, Opener] = {
    "memorystore": open_redis,
    "valkey": open_valkey,
    "redisCluster": open_redis_cluster,
}


class MemorystoreConnector:
    """Owns the API clients: kept in kopf's memo from start-up, each opened on first use,
    closed on cleanup. Missing credentials are reported on the services that need them, and
    retried."""

    def __init__(self, settings: OperatorSettings, openers: Mapping[str, Opener] = OPENERS) -> None:
        self.settings, self._openers = settings, openers
        self._apis: dict[str, InstanceApi[Any]] = {}
        self._lock = asyncio.Lock()

    async def open(self, engine: str) -> InstanceApi[Any]:
        """The client of ``engine`` (memorystore | valkey | redisCluster)."""
        async with self._lock:
            if engine not in self._apis:
                self._apis[engine] = await self._openers[engine](self.settings)
            return self._apis[engine]

    async def api(self) -> MemorystoreApi:
        """The Memorystore for Redis client."""
        return cast(MemorystoreApi, await self.open("memorystore"))

    async def close(self) -> None:
        async with self._lock:
            apis, self._apis = list(self._apis.values()), {}
            for api in apis:
                await api.close()
