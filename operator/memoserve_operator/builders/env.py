"""The serving container's environment, through the serving side's contract module.

Plain values come from ``ServingSettings.to_env()``; values that live in Secrets become
``valueFrom.secretKeyRef`` entries named by ``env_var()``. No MEMOSERVE_* name is spelled here.
Only the settings the operator decides are emitted: everything else keeps the image's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import ServingSettings, env_var
from memoserve_operator.builders.meta import Object
from memoserve_operator.builders.redis import RedisRefs, SecretKey, redis_refs
from memoserve_operator.settings import OperatorSettings

HTTP_PORT = 8080
MODEL_DIR = Path("/models")  # an emptyDir: the root filesystem is read-only
REDIS_CA_DIR = Path("/etc/memoserve/redis-ca")
REDIS_CA_FILE = REDIS_CA_DIR / "ca.crt"


def drain_seconds(isvc: InferenceService, settings: OperatorSettings) -> int:
    drain = isvc.spec.drain_seconds
    return settings.default_drain_seconds if drain is None else drain


def serving_settings(isvc: InferenceService, settings: OperatorSettings) -> ServingSettings:
    """The serving process's settings, minus what comes from Secrets (URL, password)."""
    spec = isvc.spec
    values: dict[str, Any] = {
        "model_name": isvc.model_name,
        "model_uri": spec.model.uri,
        "model_format": spec.model.format,
        "model_dir": MODEL_DIR,
        "port": HTTP_PORT,
        "drain_seconds": drain_seconds(isvc, settings),
    }
    if spec.model.version is not None:
        values["model_version"] = spec.model.version
    refs = redis_refs(isvc)
    cache = spec.cache
    values["cache_enabled"] = refs is not None
    if cache is not None and refs is not None:
        # namespace/name: two services never share keys, even on one Redis.
        values["cache_namespace"] = f"{isvc.namespace}/{isvc.name}"
        values["cache_ttl_seconds"] = cache.ttl_seconds
        if cache.l1_max_bytes is not None:
            values["l1_max_bytes"] = cache.l1_max_bytes
        if refs.ca is not None:
            values["redis_ca_file"] = REDIS_CA_FILE
    if spec.batching is not None:
        if spec.batching.max_batch_size is not None:
            values["batch_max_size"] = spec.batching.max_batch_size
        if spec.batching.max_wait_ms is not None:
            values["batch_max_wait_ms"] = spec.batching.max_wait_ms
    return ServingSettings.model_validate(values)


def container_env(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    served = serving_settings(isvc, settings)
    unset = set(ServingSettings.model_fields) - served.model_fields_set
    env: list[Object] = [
        {"name": name, "value": value} for name, value in served.to_env(exclude=unset).items()
    ]
    refs = redis_refs(isvc)
    if refs is not None:
        env.append(_from_secret("redis_url", refs.url))
        if refs.password is not None:
            env.append(_from_secret("redis_password", refs.password))
    return env


def _from_secret(field: str, ref: SecretKey) -> Object:
    selector: Object = {"name": ref.name, "key": ref.key}
    if ref.optional:
        selector["optional"] = True
    return {"name": env_var(field), "valueFrom": {"secretKeyRef": selector}}


def redis_ca_volume(refs: RedisRefs | None) -> Object | None:
    """The Secret volume that puts the Redis server CA at REDIS_CA_FILE, if there is one."""
    if refs is None or refs.ca is None:
        return None
    secret: Object = {
        "secretName": refs.ca.name,
        "items": [{"key": refs.ca.key, "path": REDIS_CA_FILE.name}],
        "defaultMode": 0o444,  # readable by the non-root serving user
    }
    if refs.ca.optional:
        secret["optional"] = True
    return {"name": "redis-ca", "secret": secret}
