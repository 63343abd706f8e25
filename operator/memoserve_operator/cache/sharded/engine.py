"""Memorystore for Valkey (spec.cache.valkey, existingValkey) and Memorystore for Redis
Cluster (spec.cache.redisCluster, existingRedisCluster) as ``Engine``s of the shared
lifecycle: one class, told apart by a ``Kind``.

Whose an instance is: a Valkey instance's labels say it (``cache.naming``), as for
Memorystore for Redis. A Redis Cluster has no labels, so the InferenceService's own record
(``cache.record``, written before the create call) is the only proof: a cluster of that name
that the record does not name is someone else's, or one left behind (deletionPolicy Retain)
by an earlier InferenceService of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.cache import CacheSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.cache.changes import Changes
from memoserve_operator.cache.connector import MemorystoreConnector
from memoserve_operator.cache.gcp import InstanceApi, MemorystoreError
from memoserve_operator.cache.naming import Location, location, not_owned, region_of
from memoserve_operator.cache.sharded import psc
from memoserve_operator.cache.sharded.api import (
    REDIS_CLUSTER,
    VALKEY,
    ShardedApi,
    ShardedInstance,
)
from memoserve_operator.cache.sharded.plan import compare, desired_instance, endpoint, update_target
from memoserve_operator.cache.sharded.spec import existing_of, spec_of, wish
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.verdict import Verdict


@dataclass(frozen=True)
class Kind:
    key: str
    existing: str
    product: str
    ready_reason: str
    existing_reason: str
    gcloud: str
    collection: str
    cache_engine: str  # status.cache.engine: valkey | redis-cluster
    service_class: str  # of the service connection policy Private Service Connect needs
    connection_role: str  # what the pods' Google service account needs for IAM AUTH


VALKEY_KIND = Kind(
    VALKEY,
    "existingValkey",
    "Memorystore for Valkey",
    "ValkeyReady",
    "ExistingValkey",
    "gcloud memorystore instances",
    "instances",
    "valkey",
    "gcp-memorystore",
    "roles/memorystore.dbConnectionUser",
)
CLUSTER_KIND = Kind(
    REDIS_CLUSTER,
    "existingRedisCluster",
    "Memorystore for Redis Cluster",
    "RedisClusterReady",
    "ExistingRedisCluster",
    "gcloud redis clusters",
    "clusters",
    "redis-cluster",
    "gcp-memorystore-redis",
    "roles/redis.dbConnectionUser",
)


class ShardedEngine:
    def __init__(self, kind: Kind, connector: MemorystoreConnector) -> None:
        self.kind, self.connector = kind, connector
        self.key, self.existing, self.product = kind.key, kind.existing, kind.product
        self.ready_reason, self.existing_reason = kind.ready_reason, kind.existing_reason
        self.gcloud = kind.gcloud

    async def api(self) -> InstanceApi[Any]:
        return await self.connector.open(self.key)

    def spec(self, cache: CacheSpec) -> Any | None:
        return spec_of(cache, self.key)

    def existing_name(self, cache: CacheSpec) -> str | None:
        return existing_of(cache, self.key)

    def where(
        self, spec: Any | None, settings: OperatorSettings, default_project: str | None
    ) -> Location | str:
        project, region = (spec.project, spec.region) if spec is not None else (None, None)
        field = f"spec.cache.{self.key}"
        return location(
            project,
            region,
            None,
            settings,
            default_project,
            field=field,
            collection=self.kind.collection,
        )

    def desired(self, isvc: InferenceService, spec: Any, where: Location) -> ShardedInstance:
        default = self.connector.settings.gcp_network
        return desired_instance(isvc, wish(spec), where, default)

    def deletion_policy(self, spec: Any) -> str:
        return str(spec.deletion_policy.value)

    def describe(self, desired: ShardedInstance) -> str:
        replicas = "default" if desired.replica_count is None else desired.replica_count
        node = f", {desired.node_type}" if desired.node_type else ""
        return (
            f"{desired.name} ({self.product}, {desired.shard_count} shards, {replicas} "
            f"replicas per shard{node})"
        )

    def compare(self, desired: ShardedInstance, actual: ShardedInstance) -> Changes:
        return compare(desired, actual)

    def update_target(
        self, desired: ShardedInstance, actual: ShardedInstance, fields: tuple[str, ...]
    ) -> ShardedInstance:
        return update_target(desired, actual, fields)

    async def upgrade(self, api: Any, name: str, version: str) -> str:
        raise AssertionError("sharded engines change versions with an update mask")

    def not_owned(self, instance: ShardedInstance, uid: str | None, recorded: bool) -> str | None:
        if self.key == VALKEY:
            return not_owned(instance, uid)
        if recorded:
            return None
        return (
            f"{instance.name} exists and this InferenceService has no record of creating it "
            "(a Redis Cluster has no labels: memoserve's record on the InferenceService is what "
            "says a cluster is its own); memoserve never touches it. Delete it, or use it as "
            "existingRedisCluster"
        )

    async def endpoint(self, api: Any, instance: ShardedInstance) -> RedisEndpoint:
        sharded = cast(ShardedApi, api)
        ca = await sharded.get_server_ca(instance.name) if instance.tls else ()
        return endpoint(instance, ca)

    def refused(self, exc: MemorystoreError, desired: ShardedInstance) -> Verdict | None:
        if not psc.policy_missing(exc):
            return None
        where = psc.Where(desired.network, self.kind.service_class, region_of(desired.name))
        return psc.verdict(exc, where, desired.name.split("/")[1])

    def status_fields(self, instance: ShardedInstance | None) -> dict[str, Any]:
        if instance is None:
            return {"engine": self.kind.cache_engine}
        return {
            "engine": self.kind.cache_engine,
            "shards": instance.shard_count,
            "replicas_per_shard": instance.replica_count,
        }
