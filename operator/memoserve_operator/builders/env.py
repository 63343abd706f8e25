"""The serving container's environment, through the contract package.

Plain values come from ``pod_settings.pod_env()``; values that live in Secrets become
``valueFrom.secretKeyRef`` entries named by ``env_var()``. No MEMOSERVE_* name is spelled here.
"""

from __future__ import annotations

from memoserve_contract import pod_settings
from memoserve_contract.pod_settings import REDIS_CA_FILE
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import env_var
from memoserve_operator.builders.meta import Object
from memoserve_operator.builders.redis import RedisRefs, SecretKey, redis_refs
from memoserve_operator.settings import OperatorSettings


def drain_seconds(isvc: InferenceService, settings: OperatorSettings) -> int:
    return pod_settings.drain_seconds(isvc, settings.default_drain_seconds)


def container_env(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    plain = pod_settings.pod_env(isvc, default_drain_seconds=settings.default_drain_seconds)
    env: list[Object] = [{"name": name, "value": value} for name, value in plain.items()]
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
