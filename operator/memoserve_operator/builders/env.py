"""The serving container's environment, through the contract package.

Plain values come from ``pod_settings.pod_env()``; the Redis URL (and an existing Valkey / Redis
Cluster's auth mode), from the ``<name>-redis`` Secret, are ``valueFrom.secretKeyRef`` entries
named by ``env_var()``; the AUTH string and the
server CA are files from Secret volumes (``redis_files``). No MEMOSERVE_* name is spelled here.
"""

from __future__ import annotations

from pathlib import Path

from memoserve_contract import pod_settings
from memoserve_contract.pod_settings import REDIS_CA_FILE, REDIS_PASSWORD_FILE
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import env_var
from memoserve_contract.tracing_env import TraceExport, otel_env, trace_export
from memoserve_operator.builders.meta import Object
from memoserve_operator.builders.redis import RedisRefs, SecretKey, redis_refs
from memoserve_operator.settings import OperatorSettings


def drain_seconds(isvc: InferenceService, settings: OperatorSettings) -> int:
    return pod_settings.drain_seconds(isvc, settings.default_drain_seconds)


def container_env(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    plain = pod_settings.pod_env(isvc, default_drain_seconds=settings.default_drain_seconds)
    plain |= _tracing_env(isvc, settings, isvc.name)
    env: list[Object] = [{"name": name, "value": value} for name, value in plain.items()]
    return env + _redis_env(redis_refs(isvc))


def trace_export_of(isvc: InferenceService, settings: OperatorSettings) -> TraceExport | None:
    """Where the service's pods send traces (spec.tracing over the operator's defaults)."""
    return trace_export(
        isvc.spec.tracing,
        default_endpoint=settings.tracing_endpoint,
        default_ratio=settings.tracing_sampling_ratio,
    )


def _tracing_env(
    isvc: InferenceService, settings: OperatorSettings, service: str
) -> dict[str, str]:
    export = trace_export_of(isvc, settings)
    if export is None:
        return {}
    return otel_env(export, service=service, namespace=isvc.namespace)


def _redis_env(refs: RedisRefs | None) -> list[Object]:
    """The Redis URL, and an existing Valkey / Redis Cluster's auth mode, from the Secret."""
    if refs is None:
        return []
    env = [_from_secret("redis_url", refs.url)]
    if refs.auth is not None:
        env.append(_from_secret("redis_auth", refs.auth))
    return env


def _from_secret(field: str, ref: SecretKey) -> Object:
    selector: Object = {"name": ref.name, "key": ref.key}
    if ref.optional:
        selector["optional"] = True
    return {"name": env_var(field), "valueFrom": {"secretKeyRef": selector}}


def redis_files(refs: RedisRefs | None) -> list[tuple[Object, Object]]:
    """The (volume, mount) pairs that put the Redis server CA at REDIS_CA_FILE and the AUTH
    string at REDIS_PASSWORD_FILE, for those the service has."""
    files = []
    if refs is not None and refs.ca is not None:
        # Readable by the non-root serving user: a CA is not a secret.
        files.append(_secret_file("redis-ca", refs.ca, REDIS_CA_FILE, 0o444))
    if refs is not None and refs.password is not None:
        # Group-readable: the pod's fsGroup is the serving user's group.
        files.append(_secret_file("redis-auth", refs.password, REDIS_PASSWORD_FILE, 0o440))
    return files


def _secret_file(name: str, ref: SecretKey, path: Path, mode: int) -> tuple[Object, Object]:
    secret: Object = {
        "secretName": ref.name,
        "items": [{"key": ref.key, "path": path.name}],
        "defaultMode": mode,
    }
    if ref.optional:
        secret["optional"] = True
    mount = {"name": name, "mountPath": str(path.parent), "readOnly": True}
    return {"name": name, "secret": secret}, mount


def front_env(
    isvc: InferenceService, settings: OperatorSettings, cpu: int | str | None
) -> list[Object]:
    """The cache front's environment: upstream, identity, workers and the cache (the Redis URL
    from its Secret, as a one-tier pod has it). ``cpu``: the front container's CPU request."""
    plain = pod_settings.front_env(
        isvc, default_drain_seconds=settings.default_drain_seconds, cpu_request=cpu
    )
    plain |= _tracing_env(isvc, settings, isvc.name)
    env: list[Object] = [{"name": name, "value": value} for name, value in plain.items()]
    return env + _redis_env(redis_refs(isvc))


def model_env(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    """The built-in runtime as the model tier: the model, no cache, nothing from a Secret."""
    plain = pod_settings.model_env(isvc, default_drain_seconds=settings.default_drain_seconds)
    plain |= _tracing_env(isvc, settings, pod_settings.model_tier_name(isvc))
    return [{"name": name, "value": value} for name, value in plain.items()]
