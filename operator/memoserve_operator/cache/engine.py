"""One Memorystore product as the shared lifecycle (``lifecycle``, ``release``) sees it.

The lifecycle (record before create, the pending operation, not-owned, converge, release per
deletionPolicy, verdicts) is one copy for the three products; what differs is behind
``Engine``: which spec fields name it, the API client, the desired instance and how it is
compared (pure, in each engine's ``plan``), the endpoint the pods get, and the messages.

Implementations: ``memorystore.engine.RedisEngine`` (Memorystore for Redis),
``sharded.engine.ShardedEngine`` (Memorystore for Valkey and for Redis Cluster).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.cache import CacheSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.cache.changes import Changes
from memoserve_operator.cache.gcp import InstanceApi, MemorystoreError
from memoserve_operator.cache.naming import Location
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.verdict import Verdict


class Seen(Protocol):
    """What the lifecycle reads of any engine's instance."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def status_message(self) -> str: ...


class Engine(Protocol):
    key: str  # the record's engine, and spec.cache's source: memorystore | valkey | redisCluster
    existing: str  # the read-only source: existingMemorystore | existingValkey | ...
    product: str  # "Memorystore for Redis", for messages
    ready_reason: str  # CacheReady=True reason of an operator-created instance
    existing_reason: str  # ... of an existing one
    gcloud: str  # "gcloud redis instances", for messages

    async def api(self) -> InstanceApi[Any]: ...

    def spec(self, cache: CacheSpec) -> Any | None:
        """The spec of an instance to create (None: not this engine's)."""

    def existing_name(self, cache: CacheSpec) -> str | None:
        """The name of an existing instance to use (None: not this engine's)."""

    def where(
        self, spec: Any | None, settings: OperatorSettings, default_project: str | None
    ) -> Location | str:
        """Where the instance lives (``spec`` None: an existing one's defaults), or what is
        missing to know it."""

    def desired(self, isvc: InferenceService, spec: Any, where: Location) -> Any: ...

    def deletion_policy(self, spec: Any) -> str: ...

    def describe(self, desired: Any) -> str:
        """``name (what it is)``, for Events and messages."""

    def compare(self, desired: Any, actual: Any) -> Changes: ...

    def update_target(self, desired: Any, actual: Any, fields: tuple[str, ...]) -> Any:
        """What to send with the update mask ``fields``."""

    async def upgrade(self, api: Any, name: str, version: str) -> str: ...

    def not_owned(self, instance: Any, uid: str | None, recorded: bool) -> str | None:
        """Why ``instance`` is not this InferenceService's (None: it is); ``recorded``: the
        InferenceService's record names it."""

    async def endpoint(self, api: Any, instance: Any) -> RedisEndpoint:
        """Where the pods reach a reachable instance, with what they need (CA, AUTH)."""

    def refused(self, exc: MemorystoreError, desired: Any) -> Verdict | None:
        """A verdict of its own for a refused create (None: the API's code and message)."""

    def status_fields(self, instance: Any | None) -> dict[str, Any]:
        """status.cache's engine and, for a sharded one, its shape (``instance``: as it is, or
        as it is being created; None: unknown)."""


def gcloud_delete(gcloud: str, name: str) -> str:
    """The command that deletes ``name`` (projects/P/locations/L/COLLECTION/ID)."""
    parts = name.split("/")
    if len(parts) != 6:
        return f"{gcloud} delete {name}"
    return f"{gcloud} delete {parts[5]} --region {parts[3]} --project {parts[1]}"


def by_key(engines: Mapping[str, Engine], key: str) -> Engine:
    return engines.get(key) or engines["memorystore"]  # records from before engines: Redis
