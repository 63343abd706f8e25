"""The Memorystore client the operator keeps for its lifetime (kopf's memo).

Opened on first use: an operator whose services never ask for Memorystore neither imports
google-cloud-redis nor needs Google credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from memoserve_operator.cache.memorystore.api import MemorystoreApi
from memoserve_operator.settings import OperatorSettings

Opener = Callable[[OperatorSettings], Awaitable[MemorystoreApi]]


async def open_google(settings: OperatorSettings) -> MemorystoreApi:
    from memoserve_operator.cache.memorystore.google import open_memorystore

    return await open_memorystore(settings.memorystore_endpoint)


class MemorystoreConnector:
    """Owns the API client: kept in kopf's memo from start-up, opened on first use, closed on
    cleanup. An operator whose services never ask for Memorystore needs no Google credentials;
    missing credentials are reported on the services that do, and retried."""

    def __init__(self, settings: OperatorSettings, opener: Opener = open_google) -> None:
        self.settings, self._opener = settings, opener
        self._api: MemorystoreApi | None = None
        self._lock = asyncio.Lock()

    async def api(self) -> MemorystoreApi:
        async with self._lock:
            if self._api is None:
                self._api = await self._opener(self.settings)
            return self._api

    async def close(self) -> None:
        async with self._lock:
            if self._api is not None:
                await self._api.close()
                self._api = None
