"""spec.cache: where the Redis behind an InferenceService lives.

Exactly one source per enabled cache: an ``external`` Redis (host, port, TLS, password Secret),
a ``memorystore`` instance the operator creates, or an ``existingMemorystore`` instance shared by
several services; for a cache that outgrows one primary, the sharded engines of
``sharded_cache``: ``valkey`` / ``redisCluster`` (created) or ``existingValkey`` /
``existingRedisCluster``. The operator's ``cache.step`` turns each into a ``RedisEndpoint``.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args

from pydantic import ConfigDict, Field

# Re-exported: they were defined here before the sharded sources shared them.
from memoserve_contract.resource.cache_enums import DeletionPolicy as DeletionPolicy
from memoserve_contract.resource.cache_enums import TransitEncryptionMode as TransitEncryptionMode
from memoserve_contract.resource.fields import SpecModel, rules
from memoserve_contract.resource.sharded_cache import (
    AuthorizationMode,
    ExistingRedisCluster,
    ExistingValkey,
    RedisClusterSpec,
    ValkeySpec,
)

SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

CacheSource = Literal[
    "external",
    "memorystore",
    "existingMemorystore",
    "valkey",
    "redisCluster",
    "existingValkey",
    "existingRedisCluster",
]
# The engines behind the sources (status.cache.engine, the CACHE column).
CacheEngine = Literal["redis", "valkey", "redis-cluster"]
# How the pods AUTH: with a password (or none), or with an IAM access token.
RedisAuth = Literal["password", "iam"]

SHARDED_SOURCES: frozenset[CacheSource] = frozenset(
    {"valkey", "redisCluster", "existingValkey", "existingRedisCluster"}
)
# Sources whose auth mode and TLS are learned only when the operator reads the instance.
EXISTING_SOURCES: frozenset[CacheSource] = frozenset(
    {"existingMemorystore", "existingValkey", "existingRedisCluster"}
)
_ENGINES: dict[CacheSource, CacheEngine] = {
    "external": "redis",
    "memorystore": "redis",
    "existingMemorystore": "redis",
    "valkey": "valkey",
    "existingValkey": "valkey",
    "redisCluster": "redis-cluster",
    "existingRedisCluster": "redis-cluster",
}


class PasswordSecretRef(SpecModel):
    """A key of a Secret in the service's namespace holding the Redis AUTH password."""

    name: str = Field(max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field(default="password", max_length=253, pattern=SECRET_KEY_PATTERN)


class CaSecretRef(SpecModel):
    """A key of a Secret in the service's namespace holding the Redis server's CA (PEM)."""

    name: str = Field(max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field(default="ca.crt", max_length=253, pattern=SECRET_KEY_PATTERN)


class ExternalRedis(SpecModel):
    """A Redis the operator does not manage."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "!has(self.caSecretRef) || self.tls",
                "spec.cache.external.caSecretRef needs tls: true",
                ".caSecretRef",
            ),
        )
    )

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=6379, ge=1, le=65535)
    tls: bool = Field(default=False, description="rediss:// (in-transit encryption)")
    password_secret_ref: PasswordSecretRef | None = None
    ca_secret_ref: CaSecretRef | None = Field(
        default=None, description="server CA; default: the image's trusted CAs"
    )


class Tier(enum.StrEnum):
    BASIC = "BASIC"
    STANDARD_HA = "STANDARD_HA"


class ConnectMode(enum.StrEnum):
    DIRECT_PEERING = "DIRECT_PEERING"
    PRIVATE_SERVICE_ACCESS = "PRIVATE_SERVICE_ACCESS"


class ReadReplicasMode(enum.StrEnum):
    READ_REPLICAS_DISABLED = "READ_REPLICAS_DISABLED"
    READ_REPLICAS_ENABLED = "READ_REPLICAS_ENABLED"


class MemorystoreSpec(SpecModel):
    """A Memorystore for Redis instance the operator creates and owns."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "self.tier == 'STANDARD_HA' || (!has(self.replicaCount)"
                " && !has(self.readReplicasMode))",
                "spec.cache.memorystore.replicaCount and readReplicasMode need tier STANDARD_HA",
                ".tier",
            ),
        )
    )

    tier: Tier = Tier.BASIC
    memory_size_gb: int = Field(default=1, ge=1, le=300)
    redis_version: str | None = Field(
        default=None, max_length=32, pattern=r"^REDIS_[0-9]+_[0-9X]+$", description="REDIS_7_2"
    )
    project: str | None = Field(
        default=None,
        pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$",
        description="Google Cloud project; default: the operator's",
    )
    region: str | None = Field(default=None, max_length=63, description="default: operator's")
    zone: str | None = Field(default=None, max_length=63)
    authorized_network: str | None = Field(
        default=None, max_length=1024, description="VPC network; default: the project's default"
    )
    connect_mode: ConnectMode = ConnectMode.DIRECT_PEERING
    auth_enabled: bool = True
    transit_encryption_mode: TransitEncryptionMode = TransitEncryptionMode.SERVER_AUTHENTICATION
    replica_count: int | None = Field(default=None, ge=0, le=5)
    read_replicas_mode: ReadReplicasMode | None = None
    # A cache, not a store: evict the least recently used keys when memory is full.
    redis_configs: dict[str, str] = Field(
        default={"maxmemory-policy": "allkeys-lru"}, max_length=32
    )
    labels: dict[str, str] | None = Field(default=None, max_length=32)
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE, description="what deleting the InferenceService does"
    )


class ExistingMemorystore(SpecModel):
    """A Memorystore instance that already exists; memoserve never modifies or deletes it."""

    name: str = Field(
        min_length=1,
        max_length=256,
        description="instance ID (operator's project/region) or projects/P/locations/L/"
        "instances/ID",
    )


# How many sources a cache names, in CEL (no let-bindings in every API server version we support).
_SOURCES = "(" + " + ".join(f"(has(self.{s}) ? 1 : 0)" for s in get_args(CacheSource)) + ")"
_SOURCE_LIST = ", ".join(get_args(CacheSource)[:-1]) + " or " + get_args(CacheSource)[-1]
# Sources with replicas that may answer reads.
_REPLICA_SOURCES = " || ".join(f"has(self.{s})" for s in sorted(SHARDED_SOURCES))


class CacheSpec(SpecModel):
    """The answer cache."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                f"{_SOURCES} == 1 || ({_SOURCES} == 0 && !self.enabled)",
                f"spec.cache needs exactly one of {_SOURCE_LIST} (none only with enabled: false)",
                "",
            ),
            (
                f"!self.readFromReplicas || {_REPLICA_SOURCES}",
                "spec.cache.readFromReplicas needs a valkey, redisCluster, existingValkey or "
                "existingRedisCluster cache",
                ".readFromReplicas",
            ),
            (
                "!self.readFromReplicas || !has(self.valkey) || self.valkey.replicaCount > 0",
                "spec.cache.readFromReplicas needs spec.cache.valkey.replicaCount of at least 1",
                ".readFromReplicas",
            ),
            (
                "!self.readFromReplicas || !has(self.redisCluster)"
                " || self.redisCluster.replicaCount > 0",
                "spec.cache.readFromReplicas needs spec.cache.redisCluster.replicaCount of at "
                "least 1",
                ".readFromReplicas",
            ),
        )
    )

    enabled: bool = True
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    l1_max_bytes: int | None = Field(
        default=None, ge=0, description="in-process L1 in front of Redis; 0 = off"
    )
    max_value_bytes: int | None = Field(
        default=None,
        ge=0,
        le=512 * 1024 * 1024,  # Memorystore's (and Redis's) largest value
        description="answers larger than this are served, not cached (default 1 MiB; 0 = no cap)",
    )
    read_from_replicas: bool = Field(
        default=False,
        description="valkey / redisCluster (and existing ones): serve hits from replicas too "
        "(more hit throughput; an answer may be missed for a moment after it is written)",
    )
    external: ExternalRedis | None = None
    memorystore: MemorystoreSpec | None = None
    existing_memorystore: ExistingMemorystore | None = None
    valkey: ValkeySpec | None = None
    redis_cluster: RedisClusterSpec | None = None
    existing_valkey: ExistingValkey | None = None
    existing_redis_cluster: ExistingRedisCluster | None = None

    @property
    def source(self) -> CacheSource | None:
        """Which Redis serves this cache (None when disabled)."""
        if not self.enabled:
            return None
        for source in get_args(CacheSource):
            if getattr(self, type(self).field_name(source)) is not None:
                return source  # type: ignore[no-any-return]  # one of CacheSource's values
        return None

    @staticmethod
    def field_name(source: str) -> str:
        """The Python field of a source (``existingValkey`` -> ``existing_valkey``)."""
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in source)

    @property
    def engine(self) -> CacheEngine | None:
        source = self.source
        return _ENGINES[source] if source is not None else None

    @property
    def sharded(self) -> bool:
        """A Valkey or Redis Cluster source (whether or not cluster mode is on)."""
        return self.source in SHARDED_SOURCES

    @property
    def redis_auth(self) -> RedisAuth | None:
        """How the pods AUTH: ``iam`` (an access token) for a created Valkey / Redis Cluster with
        IAM_AUTH, ``password`` (the AUTH string when there is one) for the others, and None for
        an existing Valkey / Redis Cluster, whose mode is learned when it is read (the pods then
        read it from the ``<name>-redis`` Secret)."""
        source = self.source
        if source is None or source in ("existingValkey", "existingRedisCluster"):
            return None
        sharded = self.valkey or self.redis_cluster
        if sharded is not None and sharded.authorization_mode == AuthorizationMode.IAM_AUTH:
            return "iam"
        return "password"

    @property
    def auth_expected(self) -> bool:
        """Whether the pods are given a Redis AUTH string. An existing Memorystore instance's
        AUTH setting is learned only when the operator reads it, so its AUTH string is expected
        (optional). Valkey and Redis Cluster have no AUTH string: IAM or nothing."""
        source = self.source
        if source == "external" and self.external is not None:
            return self.external.password_secret_ref is not None
        if source == "memorystore" and self.memorystore is not None:
            return self.memorystore.auth_enabled
        return source == "existingMemorystore"

    @property
    def server_ca_expected(self) -> bool:
        """Whether the pods are given a Redis server CA (TLS). An existing instance's TLS is
        learned only when the operator reads it, so its CA is expected (and optional)."""
        source = self.source
        if source == "external" and self.external is not None:
            return self.external.tls and self.external.ca_secret_ref is not None
        if source is None:
            return False
        owned = self.memorystore or self.valkey or self.redis_cluster
        if owned is not None:
            return owned.transit_encryption_mode == TransitEncryptionMode.SERVER_AUTHENTICATION
        return source in EXISTING_SOURCES
