"""What a service's Memorystore for Redis instance should be, and how it differs (pure).

- ``desired_instance``: the spec as the API's instance (``maxmemory-policy allkeys-lru`` unless
  the spec says otherwise: a cache, not a store), named and labelled as ``cache.naming`` says;
- ``compare``: which fields change in place (update mask, or an upgrade) and which would need a
  new instance, which the operator never does by itself;
- ``endpoint``: where the pods reach it.
"""

from __future__ import annotations

import dataclasses

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.cache import MemorystoreSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.cache.changes import Changes, differs, immutable, moved, summary
from memoserve_operator.cache.memorystore.api import Instance
from memoserve_operator.cache.naming import Location, instance_id, network, owner_labels

DEFAULT_CONFIGS = {"maxmemory-policy": "allkeys-lru"}
DISPLAY_NAME_LENGTH = 80

# Fields Memorystore changes in place (update mask paths: proto field names).
UPDATABLE = (
    "memory_size_gb",
    "redis_configs",
    "replica_count",
    "read_replicas_mode",
    "auth_enabled",
    "labels",
    "display_name",
)


def desired_instance(isvc: InferenceService, spec: MemorystoreSpec, where: Location) -> Instance:
    display = f"memoserve {isvc.namespace}/{isvc.name}"[:DISPLAY_NAME_LENGTH]
    return Instance(
        name=where.instance_name(instance_id(isvc.namespace, isvc.name)),
        tier=spec.tier.value,
        memory_size_gb=spec.memory_size_gb,
        redis_version=spec.redis_version or "",
        location_id=spec.zone or "",
        authorized_network=network(spec.authorized_network, where.project),
        connect_mode=spec.connect_mode.value,
        auth_enabled=spec.auth_enabled,
        transit_encryption_mode=spec.transit_encryption_mode.value,
        replica_count=spec.replica_count,
        read_replicas_mode=spec.read_replicas_mode.value if spec.read_replicas_mode else "",
        redis_configs=DEFAULT_CONFIGS | spec.redis_configs,
        labels=dict(spec.labels or {}) | owner_labels(isvc),
        display_name=display,
    )


def _version(name: str) -> tuple[int, int]:
    """REDIS_7_2 -> (7, 2); REDIS_6_X -> (6, 99)."""
    parts = name.removeprefix("REDIS_").split("_")
    try:
        return int(parts[0]), 99 if parts[1] == "X" else int(parts[1])
    except (IndexError, ValueError):
        return 0, 0


def compare(desired: Instance, actual: Instance) -> Changes:
    """What differs between what the spec says and what exists."""
    recreate = immutable(
        desired, actual, ("tier", "connect_mode", "transit_encryption_mode"), unset=None
    )
    # "" in the spec: the default.
    recreate += immutable(desired, actual, ("location_id", "authorized_network"))
    recreate += moved(desired.name, actual.name)
    upgrade = None
    if desired.redis_version and desired.redis_version != actual.redis_version:
        if _version(desired.redis_version) > _version(actual.redis_version):
            upgrade = desired.redis_version
        else:
            recreate.append(f"redis_version: {actual.redis_version} -> {desired.redis_version}")
    update = [
        field
        for field in UPDATABLE
        if (getattr(desired, field) not in (None, "") or field == "display_name")
        and differs(getattr(desired, field), getattr(actual, field))
    ]
    return Changes(tuple(update), upgrade, tuple(recreate), summary(desired, actual, update))


def update_target(desired: Instance, actual: Instance) -> Instance:
    """What to send with the update mask: the desired values, maps merged over the actual ones
    (a masked map field is replaced whole)."""
    return dataclasses.replace(
        desired,
        name=actual.name,
        labels=dict(actual.labels) | dict(desired.labels),
        redis_configs=dict(actual.redis_configs) | dict(desired.redis_configs),
    )


def endpoint(instance: Instance, auth: str | None) -> RedisEndpoint:
    """Where pods reach the instance: rediss:// with its CA when in-transit encryption is on."""
    ca = "".join(pem if pem.endswith("\n") else pem + "\n" for pem in instance.server_ca_certs)
    return RedisEndpoint(
        instance.host,
        instance.port,
        tls=instance.tls,
        password=auth if instance.auth_enabled else None,
        ca_cert=ca if instance.tls and ca else None,
    )
