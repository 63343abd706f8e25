"""What a service's Memorystore instance should be, and how it differs (pure).

- ``instance_id``: deterministic and valid (lowercase, starts with a letter, at most 40
  characters): ``NAMESPACE-NAME``, shortened with a hash of both when too long.
- ``owner_labels``: who the instance belongs to; an instance is adopted only when these match.
- ``desired_instance``: the spec as the API's instance (``maxmemory-policy allkeys-lru`` unless
  the spec says otherwise: a cache, not a store).
- ``compare``: which fields change in place (update mask, or an upgrade) and which would need a
  new instance, which the operator never does by itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.cache import MemorystoreSpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import MANAGED_BY
from memoserve_operator.cache.memorystore.api import Instance
from memoserve_operator.settings import OperatorSettings

MAX_ID_LENGTH = 40
ID_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
DEFAULT_CONFIGS = {"maxmemory-policy": "allkeys-lru"}
DISPLAY_NAME_LENGTH = 80

MANAGED_BY_LABEL = "managed-by"
NAMESPACE_LABEL = "memoserve-namespace"
NAME_LABEL = "memoserve-name"
UID_LABEL = "memoserve-uid"

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


def instance_id(namespace: str, name: str) -> str:
    """``NAMESPACE-NAME``; with a hash of both instead of the tail when that is too long."""
    base = f"{namespace}-{name}"
    if not base[0].isalpha():
        base = f"ms-{base}"  # namespaces may start with a digit
    if len(base) <= MAX_ID_LENGTH:
        return base
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]
    return f"{base[: MAX_ID_LENGTH - len(digest) - 1].rstrip('-')}-{digest}"


def owner_labels(isvc: InferenceService) -> dict[str, str]:
    """GCP labels naming the InferenceService that owns an instance (all valid label values:
    Kubernetes names and uids are lowercase letters, digits and dashes, at most 63 long)."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        NAMESPACE_LABEL: isvc.namespace,
        NAME_LABEL: isvc.name,
        UID_LABEL: isvc.metadata.uid or "",
    }


def not_owned(instance: Instance, uid: str | None) -> str | None:
    """Why ``instance`` is not the InferenceService ``uid``'s to manage (None when it is)."""
    labels = instance.labels
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return (
            f"{instance.name} exists and was not created by memoserve (no label "
            f"{MANAGED_BY_LABEL}={MANAGED_BY}); memoserve never touches it"
        )
    owner = f"{labels.get(NAMESPACE_LABEL)}/{labels.get(NAME_LABEL)}"
    if not uid or labels.get(UID_LABEL) != uid:
        return (
            f"{instance.name} belongs to InferenceService {owner} with uid "
            f"{labels.get(UID_LABEL)} (e.g. one deleted with deletionPolicy Retain); delete the "
            f"instance, or set its label {UID_LABEL}={uid} to adopt it"
        )
    return None


@dataclass(frozen=True)
class Location:
    project: str
    region: str

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def instance_name(self, instance: str) -> str:
        return f"{self.parent}/instances/{instance}"


def location(
    spec: MemorystoreSpec | None, settings: OperatorSettings, default_project: str | None
) -> Location | str:
    """Where the instance lives, or what is missing to know it."""
    project = (spec.project if spec else None) or settings.gcp_project or default_project
    region = (spec.region if spec else None) or settings.gcp_region
    if region is None and spec is not None and spec.zone:
        region = spec.zone.rsplit("-", 1)[0]  # us-central1-a -> us-central1
    if project is None:
        return "no Google Cloud project: set MEMOSERVE_OPERATOR_GCP_PROJECT (or the spec's project)"
    if region is None:
        return "no region: set MEMOSERVE_OPERATOR_GCP_REGION or spec.cache.memorystore.region"
    return Location(project, region)


def existing_name(name: str, where: Location) -> str:
    """A full instance name from spec.cache.existingMemorystore.name."""
    return name if name.startswith("projects/") else where.instance_name(name)


def network(spec_network: str | None, project: str) -> str:
    if not spec_network or "/" in spec_network:
        return spec_network or ""
    return f"projects/{project}/global/networks/{spec_network}"


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


@dataclass(frozen=True)
class Changes:
    update: tuple[str, ...] = ()  # update mask
    upgrade: str | None = None  # a newer redisVersion
    recreate: tuple[str, ...] = ()  # "field: actual -> desired" that only a new instance has

    def describe(self, desired: Instance, actual: Instance) -> str:
        return ", ".join(f"{f}: {_show(actual, f)} -> {_show(desired, f)}" for f in self.update)


def _show(instance: Instance, field: str) -> str:
    value = getattr(instance, field)
    return (
        "(changed)"
        if field == "labels"
        else str(dict(value) if field == "redis_configs" else value)
    )


def compare(desired: Instance, actual: Instance) -> Changes:
    """What differs between what the spec says and what exists."""
    recreate = [
        f"{field}: {getattr(actual, field) or '(default)'} -> {getattr(desired, field)}"
        for field in ("tier", "connect_mode", "transit_encryption_mode")
        if getattr(desired, field) != getattr(actual, field)
    ]
    for field in ("location_id", "authorized_network"):  # "" in the spec: the default
        if getattr(desired, field) and getattr(desired, field) != getattr(actual, field):
            recreate.append(f"{field}: {getattr(actual, field)} -> {getattr(desired, field)}")
    here, there = (i.name.rsplit("/instances/", 1)[0] for i in (actual, desired))
    if here != there:
        recreate.append(f"location: {here} -> {there}")
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
        and _differs(getattr(desired, field), getattr(actual, field))
    ]
    return Changes(tuple(update), upgrade, tuple(recreate))


def _differs(desired: object, actual: object) -> bool:
    """Maps (labels, redisConfigs): only the keys the spec names count, so that a label or a
    config someone else set is not fought over."""
    if isinstance(desired, Mapping) and isinstance(actual, Mapping):
        return any(actual.get(key) != value for key, value in desired.items())
    return desired != actual


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
