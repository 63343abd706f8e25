"""What a service's Memorystore for Valkey instance or Redis Cluster should be, and how it
differs (pure).

- ``desired_instance``: the spec's wishes (``ShardedInstance`` as the engine read them from the
  spec), named and labelled as ``cache.naming`` says, ``maxmemory-policy allkeys-lru`` unless the
  spec names another (a cache, not a store), the network as a full name (the operator's
  ``gcp_network`` when the spec names none);
- ``compare``: one in-place change per operation, in a fixed order (shards, replicas, node
  type, engine version, then configs and labels): Memorystore runs one scaling operation on an
  instance at a time, and a mask mixing them risks a refusal of the whole. The rest follow on
  the next reconciles, once the instance is ACTIVE again. Authorization mode, in-transit
  encryption, network, mode, location and an older engine version need a new instance;
- ``endpoint``: the discovery endpoint, TLS with the server CA, no secret (IAM: a token).
"""

from __future__ import annotations

import dataclasses
import re

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.cache.changes import Changes, differs, immutable, moved, summary
from memoserve_operator.cache.naming import Location, instance_id, network, owner_labels
from memoserve_operator.cache.sharded.api import VALKEY, ShardedInstance

DEFAULT_CONFIGS = {"maxmemory-policy": "allkeys-lru"}

# In the order they go out, one per update. Valkey has labels and engine versions; Redis
# Cluster neither.
UPDATABLE = {
    VALKEY: ("shard_count", "replica_count", "node_type", "engine_version", "configs", "labels"),
}
CLUSTER_UPDATABLE = ("shard_count", "replica_count", "node_type", "configs")
IMMUTABLE = ("authorization_mode", "transit_encryption_mode")
IMMUTABLE_UNLESS_DEFAULT = ("network", "mode")


def desired_instance(
    isvc: InferenceService, wish: ShardedInstance, where: Location, default_network: str
) -> ShardedInstance:
    """``default_network``: the operator's (``gcp_network``), for a spec that names none; the
    endpoints must be in some network, and the pods' is the one that matters."""
    labels = dict(wish.labels) | owner_labels(isvc) if wish.engine == VALKEY else {}
    return dataclasses.replace(
        wish,
        name=where.instance_name(instance_id(isvc.namespace, isvc.name)),
        configs=DEFAULT_CONFIGS | dict(wish.configs),
        network=network(wish.network or default_network, where.project),
        labels=labels,
    )


def _version(name: str) -> tuple[int, ...]:
    """VALKEY_8_0 -> (8, 0); anything unreadable sorts first."""
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def compare(desired: ShardedInstance, actual: ShardedInstance) -> Changes:
    """What differs between what the spec says and what exists: at most one field to update."""
    recreate = immutable(desired, actual, IMMUTABLE)
    recreate += immutable(desired, actual, IMMUTABLE_UNLESS_DEFAULT)
    recreate += moved(desired.name, actual.name)
    fields: tuple[str, ...] = UPDATABLE.get(desired.engine, CLUSTER_UPDATABLE)
    wanted, current = desired.engine_version, actual.engine_version
    if wanted and _version(wanted) < _version(current):  # no downgrade in place
        recreate.append(f"engine_version: {current} -> {wanted}")
        fields = tuple(f for f in fields if f != "engine_version")
    pending = [
        f
        for f in fields
        if getattr(desired, f) not in (None, "")
        and differs(getattr(desired, f), getattr(actual, f))
    ]
    update = tuple(pending[:1])
    text = summary(desired, actual, update)
    if len(pending) > 1:
        text += f" (then {', '.join(pending[1:])})"
    return Changes(update, None, tuple(recreate), text)


def update_target(
    desired: ShardedInstance, actual: ShardedInstance, fields: tuple[str, ...]
) -> ShardedInstance:
    """What to send with the update mask ``fields``: the actual instance with those fields as
    desired, maps merged over the actual ones (a masked map field is replaced whole)."""
    changes: dict[str, object] = {f: getattr(desired, f) for f in fields}
    for mapping in ("configs", "labels"):
        if mapping in changes:
            changes[mapping] = dict(getattr(actual, mapping)) | dict(getattr(desired, mapping))
    return dataclasses.replace(actual, **changes)  # type: ignore[arg-type]


def endpoint(instance: ShardedInstance, ca_certs: tuple[str, ...]) -> RedisEndpoint:
    """Where pods reach the instance: its discovery endpoint; rediss:// with the server CA
    when in-transit encryption is on. With IAM auth nothing secret: each pod AUTHs with an
    access token of its own Google service account."""
    ca = "".join(pem if pem.endswith("\n") else pem + "\n" for pem in ca_certs)
    return RedisEndpoint(
        instance.host,
        instance.port,
        tls=instance.tls,
        ca_cert=ca if instance.tls and ca else None,
        engine="valkey" if instance.engine == VALKEY else "redis-cluster",
        auth="iam" if instance.iam else "password",
        cluster=instance.mode != "CLUSTER_DISABLED",  # Redis Cluster: always
        shards=instance.shard_count,
        replicas_per_shard=instance.replica_count,
        node_addresses=instance.node_addresses,
    )
