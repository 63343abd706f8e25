"""Memorystore for Redis as an ``Engine`` of the shared lifecycle (spec.cache.memorystore,
existingMemorystore): the API is ``memorystore.api``, the pure plan ``memorystore.plan``."""

from __future__ import annotations

from typing import Any, cast

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.cache import CacheSpec, MemorystoreSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.cache.changes import Changes
from memoserve_operator.cache.connector import MemorystoreConnector
from memoserve_operator.cache.gcp import InstanceApi, MemorystoreError
from memoserve_operator.cache.memorystore.api import Instance, MemorystoreApi
from memoserve_operator.cache.memorystore.plan import (
    compare,
    desired_instance,
    endpoint,
    update_target,
)
from memoserve_operator.cache.naming import Location, location, not_owned
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.verdict import Verdict


class RedisEngine:
    key, existing = "memorystore", "existingMemorystore"
    product = "Memorystore for Redis"
    ready_reason, existing_reason = "MemorystoreReady", "ExistingMemorystore"
    gcloud = "gcloud redis instances"

    def __init__(self, connector: MemorystoreConnector) -> None:
        self.connector = connector

    async def api(self) -> InstanceApi[Any]:
        return await self.connector.api()

    def spec(self, cache: CacheSpec) -> MemorystoreSpec | None:
        return cache.memorystore

    def existing_name(self, cache: CacheSpec) -> str | None:
        return cache.existing_memorystore.name if cache.existing_memorystore else None

    def where(
        self, spec: MemorystoreSpec | None, settings: OperatorSettings, default_project: str | None
    ) -> Location | str:
        if spec is None:
            return location(None, None, None, settings, default_project)
        return location(spec.project, spec.region, spec.zone, settings, default_project)

    def desired(self, isvc: InferenceService, spec: MemorystoreSpec, where: Location) -> Instance:
        return desired_instance(isvc, spec, where)

    def deletion_policy(self, spec: MemorystoreSpec) -> str:
        return spec.deletion_policy.value

    def describe(self, desired: Instance) -> str:
        return f"{desired.name} ({desired.tier}, {desired.memory_size_gb} GB)"

    def compare(self, desired: Instance, actual: Instance) -> Changes:
        return compare(desired, actual)

    def update_target(self, desired: Instance, actual: Instance, fields: tuple[str, ...]) -> Any:
        return update_target(desired, actual)

    async def upgrade(self, api: Any, name: str, version: str) -> str:
        return await cast(MemorystoreApi, api).upgrade_instance(name, version)

    def not_owned(self, instance: Instance, uid: str | None, recorded: bool) -> str | None:
        return not_owned(instance, uid)

    async def endpoint(self, api: Any, instance: Instance) -> RedisEndpoint:
        redis: MemorystoreApi = api
        auth = await redis.get_auth_string(instance.name) if instance.auth_enabled else None
        return endpoint(instance, auth)

    def refused(self, exc: MemorystoreError, desired: Any) -> Verdict | None:
        return None

    def status_fields(self, instance: Instance | None) -> dict[str, Any]:
        return {"engine": "redis"}
