"""The rules the emulator enforces on requests (a subset of Memorystore's), and its defaults.

Refusals are INVALID_ARGUMENT with a message in the API's manner, so that a client that passes
the emulator sends what Memorystore would take: instance IDs, tiers, sizes, versions, replicas,
redisConfigs, labels and update masks.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import redis_v1

from memoserve_dev.memorystore_emulator.faults import ApiError
from memoserve_dev.memorystore_emulator.redis_config import SUPPORTED_CONFIGS

Instance = redis_v1.Instance
Enums: Any = Instance  # proto-plus enums: members are ints to mypy
PARENT = re.compile(r"^projects/([^/]+)/locations/([a-z0-9-]+)$")
NAME = re.compile(r"^(projects/[^/]+/locations/[a-z0-9-]+)/instances/([^/]+)$")
INSTANCE_ID = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
VERSIONS = ("REDIS_3_2", "REDIS_4_0", "REDIS_5_0", "REDIS_6_X", "REDIS_7_0", "REDIS_7_2")
DEFAULT_VERSION = "REDIS_7_0"
POLICIES = frozenset(
    {
        "volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu",
        "volatile-random", "allkeys-random", "volatile-ttl", "noeviction",
    }
)  # fmt: skip
# Update mask paths, as the API documents them or as clients spell them -> the field.
UPDATABLE = {
    "display_name": "display_name",
    "labels": "labels",
    "memory_size_gb": "memory_size_gb",
    "redis_configs": "redis_configs",
    "redis_config": "redis_configs",
    "replica_count": "replica_count",
    "read_replicas_mode": "read_replicas_mode",
    "auth_enabled": "auth_enabled",
}


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)


def parent_parts(parent: str) -> tuple[str, str]:
    match = PARENT.match(parent)
    if match is None:
        raise invalid(f"parent must be projects/PROJECT/locations/REGION, not {parent!r}")
    return match.group(1), match.group(2)


def name_parts(name: str) -> tuple[str, str]:
    match = NAME.match(name)
    if match is None:
        raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
    return match.group(1), match.group(2)


def _snake(path: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), path)


def update_fields(paths: list[str]) -> list[str]:
    if not paths:
        raise invalid("update_mask must name at least one field")
    fields = []
    for path in paths:
        field = UPDATABLE.get(_snake(path))
        if field is None:
            allowed = ", ".join(sorted(set(UPDATABLE.values())))
            raise invalid(f"field {path!r} cannot be updated (updatable: {allowed})")
        fields.append(field)
    return fields


def check_instance(instance: Instance) -> None:
    """Rules on fields a create or an update may set."""
    if instance.tier == Instance.Tier.TIER_UNSPECIFIED:
        raise invalid("tier is required: BASIC or STANDARD_HA")
    if not 1 <= instance.memory_size_gb <= 300:
        raise invalid(f"memory_size_gb must be 1 to 300, not {instance.memory_size_gb}")
    basic = instance.tier == Instance.Tier.BASIC
    if basic and instance.replica_count:
        raise invalid("replica_count is only for tier STANDARD_HA")
    if not 0 <= instance.replica_count <= 5:
        raise invalid(f"replica_count must be 0 to 5, not {instance.replica_count}")
    enabled = instance.read_replicas_mode == Instance.ReadReplicasMode.READ_REPLICAS_ENABLED
    if basic and enabled:
        raise invalid("read replicas need tier STANDARD_HA")
    for key, value in instance.redis_configs.items():
        if key not in SUPPORTED_CONFIGS:
            raise invalid(f"redis config {key!r} is not supported")
        if key == "maxmemory-policy" and value not in POLICIES:
            raise invalid(f"maxmemory-policy {value!r} is not one of {', '.join(sorted(POLICIES))}")
    for key, value in instance.labels.items():
        if not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
            raise invalid(
                f"label {key}={value}: keys and values are lowercase letters, digits, _ and -, "
                "at most 63 characters (keys start with a letter)"
            )


def check_create(parent: str, instance_id: str, instance: Instance) -> None:
    _, region = parent_parts(parent)
    if not INSTANCE_ID.match(instance_id):
        raise invalid(
            f"instance_id {instance_id!r}: 1 to 40 lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen"
        )
    check_instance(instance)
    if instance.redis_version and instance.redis_version not in VERSIONS:
        raise invalid(
            f"redis_version {instance.redis_version!r} is not one of {', '.join(VERSIONS)}"
        )
    if instance.location_id and not instance.location_id.startswith(f"{region}-"):
        raise invalid(f"location_id {instance.location_id} is not a zone of {region}")


def apply_defaults(instance: Instance, parent: str, instance_id: str) -> None:
    project, region = parent_parts(parent)
    instance.name = f"{parent}/instances/{instance_id}"
    instance.redis_version = instance.redis_version or DEFAULT_VERSION
    instance.location_id = instance.location_id or f"{region}-a"
    instance.current_location_id = instance.location_id
    if instance.tier == Instance.Tier.STANDARD_HA:
        instance.alternative_location_id = instance.alternative_location_id or f"{region}-b"
        instance.replica_count = instance.replica_count or 1
        if instance.read_replicas_mode == Enums.ReadReplicasMode.READ_REPLICAS_MODE_UNSPECIFIED:
            instance.read_replicas_mode = Enums.ReadReplicasMode.READ_REPLICAS_DISABLED
    network = instance.authorized_network or "default"
    if "/" not in network:
        network = f"projects/{project}/global/networks/{network}"
    instance.authorized_network = network
    if instance.connect_mode == Enums.ConnectMode.CONNECT_MODE_UNSPECIFIED:
        instance.connect_mode = Enums.ConnectMode.DIRECT_PEERING
    mode = Enums.TransitEncryptionMode
    if instance.transit_encryption_mode == mode.TRANSIT_ENCRYPTION_MODE_UNSPECIFIED:
        instance.transit_encryption_mode = mode.DISABLED
    instance.reserved_ip_range = instance.reserved_ip_range or "10.0.0.0/29"
