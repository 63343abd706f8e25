"""spec.cache's sharded sources: Memorystore for Valkey and Memorystore for Redis Cluster.

For a cache that outgrows one Memorystore for Redis primary (300 GB, one node's throughput):
``valkey`` and ``redisCluster`` are instances the operator creates and owns; ``existingValkey``
and ``existingRedisCluster`` are instances someone else owns, which memoserve only reads.

The defaults are what a platform engineer would pick for a cache: IAM auth (no AUTH string to
leak or rotate) and TLS on, 3 shards with 1 replica each (a zone can fail), evict the least
recently used keys when memory is full. Field names follow the Google APIs
(google.cloud.memorystore_v1.Instance, google.cloud.redis_cluster_v1.Cluster); so do enum
values, except where the two APIs spell one thing two ways (the operator maps ours to each).
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import ConfigDict, Field

from memoserve_contract.resource.cache_enums import DeletionPolicy, TransitEncryptionMode
from memoserve_contract.resource.fields import SpecModel, rules

# Google's published limits: 1-250 shards, 0-5 replicas per shard, for both (Redis Cluster's
# overview raised its replicas from 0-2 to "up to five"; older pages still say two).
MAX_SHARDS = 250
MAX_VALKEY_REPLICAS = 5
MAX_REDIS_CLUSTER_REPLICAS = 5
DEFAULT_SHARDS = 3
DEFAULT_REPLICAS = 1

PROJECT_PATTERN = r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$"
# A VPC network: projects/P/global/networks/N, or N in the instance's project.
NETWORK_PATTERN = (
    r"^(projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/global/networks/)?[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
)
ENGINE_VERSION_PATTERN = r"^VALKEY_[0-9]+_[0-9]+$"


def _cache_eviction() -> dict[str, str]:
    # A cache, not a store: evict the least recently used keys when memory is full.
    return {"maxmemory-policy": "allkeys-lru"}


class ValkeyMode(enum.StrEnum):
    CLUSTER = "CLUSTER"  # sharded: clients speak the cluster protocol to a discovery endpoint
    CLUSTER_DISABLED = "CLUSTER_DISABLED"  # one shard, a primary endpoint: plain Redis protocol


class ValkeyNodeType(enum.StrEnum):
    SHARED_CORE_NANO = "SHARED_CORE_NANO"
    STANDARD_SMALL = "STANDARD_SMALL"
    HIGHMEM_MEDIUM = "HIGHMEM_MEDIUM"
    HIGHMEM_XLARGE = "HIGHMEM_XLARGE"


class RedisClusterNodeType(enum.StrEnum):
    REDIS_SHARED_CORE_NANO = "REDIS_SHARED_CORE_NANO"
    REDIS_STANDARD_SMALL = "REDIS_STANDARD_SMALL"
    REDIS_HIGHMEM_MEDIUM = "REDIS_HIGHMEM_MEDIUM"
    REDIS_HIGHMEM_XLARGE = "REDIS_HIGHMEM_XLARGE"


class AuthorizationMode(enum.StrEnum):
    """IAM_AUTH: clients AUTH with an access token of a Google identity granted the
    dbConnectionUser role; there is no AUTH string. (Redis Cluster's API spells these
    AUTH_MODE_IAM_AUTH / AUTH_MODE_DISABLED.)"""

    IAM_AUTH = "IAM_AUTH"
    AUTH_DISABLED = "AUTH_DISABLED"


def _project() -> Any:  # a FieldInfo, typed Any as Field() is
    return Field(
        default=None,
        pattern=PROJECT_PATTERN,
        description="Google Cloud project; default: the operator's",
    )


def _network() -> Any:
    return Field(
        default=None,
        max_length=1024,
        pattern=NETWORK_PATTERN,
        description="VPC network whose Private Service Connect endpoints reach the nodes "
        "(projects/P/global/networks/N or N); default: the operator's, else the project's "
        "default",
    )


class ValkeySpec(SpecModel):
    """A Memorystore for Valkey instance the operator creates and owns."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "self.mode == 'CLUSTER' || !has(self.shardCount) || self.shardCount == 1",
                "spec.cache.valkey.shardCount must be 1 with mode CLUSTER_DISABLED",
                ".shardCount",
            ),
        )
    )

    mode: ValkeyMode = ValkeyMode.CLUSTER
    shard_count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SHARDS,
        description=f"primaries, each holding a share of the keys; default {DEFAULT_SHARDS} "
        "(1 with mode CLUSTER_DISABLED)",
    )
    replica_count: int = Field(
        default=DEFAULT_REPLICAS,
        ge=0,
        le=MAX_VALKEY_REPLICAS,
        description="replicas per shard (in other zones)",
    )
    node_type: ValkeyNodeType = ValkeyNodeType.HIGHMEM_MEDIUM
    engine_version: str | None = Field(
        default=None,
        max_length=32,
        pattern=ENGINE_VERSION_PATTERN,
        description="VALKEY_8_0; default: the API's",
    )
    engine_configs: dict[str, str] = Field(default_factory=_cache_eviction, max_length=32)
    authorization_mode: AuthorizationMode = AuthorizationMode.IAM_AUTH
    transit_encryption_mode: TransitEncryptionMode = TransitEncryptionMode.SERVER_AUTHENTICATION
    network: str | None = _network()
    project: str | None = _project()
    region: str | None = Field(default=None, max_length=63, description="default: operator's")
    labels: dict[str, str] | None = Field(default=None, max_length=32)
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE, description="what deleting the InferenceService does"
    )

    @property
    def shards(self) -> int:
        """The shard count the instance is created with."""
        if self.shard_count is not None:
            return self.shard_count
        return DEFAULT_SHARDS if self.mode == ValkeyMode.CLUSTER else 1

    @property
    def cluster(self) -> bool:
        """Whether clients speak the cluster protocol (MOVED, CLUSTER SHARDS)."""
        return self.mode == ValkeyMode.CLUSTER


class RedisClusterSpec(SpecModel):
    """A Memorystore for Redis Cluster instance the operator creates and owns. (The API has no
    labels and no engine version on a cluster.)"""

    shard_count: int = Field(
        default=DEFAULT_SHARDS,
        ge=1,
        le=MAX_SHARDS,
        description="primaries, each holding a share of the keys",
    )
    replica_count: int = Field(
        default=DEFAULT_REPLICAS,
        ge=0,
        le=MAX_REDIS_CLUSTER_REPLICAS,
        description="replicas per shard (in other zones)",
    )
    node_type: RedisClusterNodeType = RedisClusterNodeType.REDIS_HIGHMEM_MEDIUM
    redis_configs: dict[str, str] = Field(default_factory=_cache_eviction, max_length=32)
    authorization_mode: AuthorizationMode = AuthorizationMode.IAM_AUTH
    transit_encryption_mode: TransitEncryptionMode = TransitEncryptionMode.SERVER_AUTHENTICATION
    network: str | None = _network()
    project: str | None = _project()
    region: str | None = Field(default=None, max_length=63, description="default: operator's")
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE, description="what deleting the InferenceService does"
    )

    @property
    def shards(self) -> int:
        return self.shard_count


class ExistingValkey(SpecModel):
    """A Memorystore for Valkey instance that already exists; memoserve only reads it. Its
    auth mode and TLS are learned when it is read."""

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^(projects/[^/]+/locations/[^/]+/instances/)?[a-z]([-a-z0-9]*[a-z0-9])?$",
        description="instance ID (operator's project/region) or projects/P/locations/L/"
        "instances/ID",
    )


class ExistingRedisCluster(SpecModel):
    """A Memorystore for Redis Cluster that already exists; memoserve only reads it. Its auth
    mode and TLS are learned when it is read."""

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^(projects/[^/]+/locations/[^/]+/clusters/)?[a-z]([-a-z0-9]*[a-z0-9])?$",
        description="cluster ID (operator's project/region) or projects/P/locations/L/clusters/ID",
    )
