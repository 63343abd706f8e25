"""Request rules shared by Memorystore for Valkey and Memorystore for Redis Cluster (each API's
own rules are in its flavor): counts, configs, labels, update masks. Refusals are
INVALID_ARGUMENT, worded as the API's."""

from __future__ import annotations

import re
from collections.abc import Mapping

from memoserve_dev.memorystore_emulator import validate
from memoserve_dev.memorystore_emulator.redis_config import PASSTHROUGH_CONFIGS

invalid = validate.invalid
MAX_SHARDS = 250
# Configs both APIs take (engine_configs / redis_configs), set on every node as they are.
CONFIGS = PASSTHROUGH_CONFIGS | {"maxmemory-clients", "slowlog-log-slower-than", "maxclients"}
# At most one of these per update: Memorystore changes one dimension of a cluster at a time.
SCALING = frozenset({"shard_count", "replica_count", "node_type", "engine_version"})


def check_id(resource_id: str, pattern: re.Pattern[str], rule: str, what: str) -> None:
    if not pattern.match(resource_id):
        raise invalid(f"{what} {resource_id!r}: {rule}")


def check_counts(shards: int, replicas: int, max_replicas: int) -> None:
    if not 1 <= shards <= MAX_SHARDS:
        raise invalid(f"shard_count must be 1 to {MAX_SHARDS}, not {shards}")
    if not 0 <= replicas <= max_replicas:
        raise invalid(f"replica_count must be 0 to {max_replicas}, not {replicas}")


def check_configs(configs: Mapping[str, str], field: str) -> None:
    for key, value in configs.items():
        if key not in CONFIGS:
            raise invalid(f"{field}: {key!r} is not a supported configuration")
        if key == "maxmemory-policy" and value not in validate.POLICIES:
            raise invalid(f"maxmemory-policy {value!r} is not one of {sorted(validate.POLICIES)}")


def check_labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not validate.LABEL_KEY.match(key) or not validate.LABEL_VALUE.match(value):
            raise invalid(
                f"label {key}={value}: keys and values are lowercase letters, digits, _ and -, "
                "at most 63 characters (keys start with a letter)"
            )


def update_fields(paths: list[str], updatable: Mapping[str, str]) -> list[str]:
    """The fields an update mask names (snake_case or camelCase), each one updatable."""
    if not paths:
        raise invalid("update_mask must name at least one field")
    fields = []
    for path in paths:
        field = updatable.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), path))
        if field is None:
            allowed = ", ".join(sorted(set(updatable.values())))
            raise invalid(f"field {path!r} cannot be updated (updatable: {allowed})")
        fields.append(field)
    scaling = sorted(SCALING & set(fields))
    if len(scaling) > 1:
        raise invalid(f"only one of {', '.join(scaling)} can be updated at a time")
    return fields
