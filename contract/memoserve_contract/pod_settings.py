"""What a serving pod of an InferenceService is configured with: the spec -> settings mapping.

Pure, and shared: the operator puts ``pod_env()`` into the Deployment (``builders.env`` adds the
values that come from Secrets), and ``memoserve run`` reads the same values back with
``ServingSettings.from_env()`` as a pod does. Only the settings the spec decides are emitted:
everything else keeps the image's default.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from memoserve_contract.quantity import whole_cores
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import ServingSettings

HTTP_PORT = 8080
MODEL_DIR = Path("/models")  # an emptyDir: the root filesystem is read-only
REDIS_CA_DIR = Path("/etc/memoserve/redis-ca")
REDIS_CA_FILE = REDIS_CA_DIR / "ca.crt"
# The AUTH string as a file from the Secret, not an env var: env vars show in `kubectl describe`
# and in every child process's environment.
REDIS_AUTH_DIR = Path("/etc/memoserve/redis-auth")
REDIS_PASSWORD_FILE = REDIS_AUTH_DIR / "password"
TERMINATION_LOG = Path("/dev/termination-log")  # the container's terminationMessagePath
GRPC_PORT = 8081  # plaintext (h2c): in-cluster clients
# TLS, for the load balancer: it sends HTTP/2 to backends only over TLS (and does not verify
# the certificate). The key and certificate come from the <name>-grpc-tls Secret.
GRPC_TLS_PORT = 8443
GRPC_TLS_DIR = Path("/etc/memoserve/grpc-tls")
GRPC_TLS_CERT_FILE = GRPC_TLS_DIR / "tls.crt"
GRPC_TLS_KEY_FILE = GRPC_TLS_DIR / "tls.key"


def drain_seconds(isvc: InferenceService, default: int) -> int:
    drain = isvc.spec.drain_seconds
    return default if drain is None else drain


def cache_namespace(isvc: InferenceService) -> str:
    """The service's identity in its cache keys and counts: two services never share keys,
    even on one Redis."""
    return f"{isvc.namespace}/{isvc.name}"


def _process(isvc: InferenceService, default_drain_seconds: int) -> dict[str, Any]:
    """What every memoserve process of the service is told: its name, port, drain and HTTP
    server."""
    values: dict[str, Any] = {
        "model_name": isvc.model_name,
        "port": HTTP_PORT,
        "drain_seconds": drain_seconds(isvc, default_drain_seconds),
        "termination_log": TERMINATION_LOG,
    }
    transports = isvc.spec.transports
    if transports is not None and transports.http is not None:
        values["http_transport"] = transports.http
    return values


def _model(isvc: InferenceService) -> dict[str, Any]:
    """The built-in runtime's model (a process that loads it)."""
    model = isvc.spec.model
    values: dict[str, Any] = {
        "model_uri": model.uri,
        "model_format": model.format,
        "model_dir": MODEL_DIR,
    }
    if model.version is not None:
        values["model_version"] = model.version
    batching = isvc.spec.batching
    if batching is not None and batching.max_batch_size is not None:
        values["batch_max_size"] = batching.max_batch_size
    if batching is not None and batching.max_wait_ms is not None:
        values["batch_max_wait_ms"] = batching.max_wait_ms
    return values


def _clients(isvc: InferenceService) -> dict[str, Any]:
    """What the process clients reach serves: gRPC (and TLS) and the cache."""
    spec = isvc.spec
    values: dict[str, Any] = {"grpc_enabled": spec.grpc_enabled}
    if spec.grpc_enabled:
        values["grpc_port"] = GRPC_PORT
        if spec.transports is not None and spec.transports.grpc is not None:
            values["grpc_transport"] = spec.transports.grpc
    if spec.grpc_through_ingress:
        values["grpc_tls_port"] = GRPC_TLS_PORT
        values["grpc_tls_cert_file"] = GRPC_TLS_CERT_FILE
        values["grpc_tls_key_file"] = GRPC_TLS_KEY_FILE
    cache = spec.cache
    values["cache_enabled"] = spec.cache_source is not None
    if cache is not None and spec.cache_source is not None:
        values["cache_namespace"] = cache_namespace(isvc)
        values["cache_ttl_seconds"] = cache.ttl_seconds
        if cache.l1_max_bytes is not None:
            values["l1_max_bytes"] = cache.l1_max_bytes
        if cache.max_value_bytes is not None:
            values["cache_max_value_bytes"] = cache.max_value_bytes
        if cache.server_ca_expected:
            values["redis_ca_file"] = REDIS_CA_FILE
        if cache.auth_expected:
            values["redis_password_file"] = REDIS_PASSWORD_FILE
        # IAM for a created Valkey / Redis Cluster: an access token, nothing secret in the pod.
        # An existing one's mode comes from the <name>-redis Secret (builders.env).
        if cache.redis_auth == "iam":
            values["redis_auth"] = "iam"
        if cache.read_from_replicas:
            values["redis_read_replicas"] = True
    return values


def serving_settings(isvc: InferenceService, *, default_drain_seconds: int) -> ServingSettings:
    """The one-tier serving process's settings (model and cache in one pod), minus the Redis
    URL (an env var from a Secret)."""
    values = _process(isvc, default_drain_seconds) | _model(isvc) | _clients(isvc)
    return ServingSettings.model_validate(values)


# The split (docs/front.md): a cache front (NAME) in front of a model tier (NAME-model).


def model_tier_name(isvc: InferenceService) -> str:
    """The model tier's Deployment and Service (the front's upstream)."""
    return f"{isvc.name}-model"


def model_port(isvc: InferenceService) -> int:
    """The model tier's v2 REST port: model.server's, else the built-in runtime's."""
    server = isvc.spec.model.server
    return server.port if server is not None else HTTP_PORT


def upstream_url(isvc: InferenceService) -> str:
    """Where the front sends misses: the model tier's Service (same port as its pods)."""
    return f"http://{model_tier_name(isvc)}.{isvc.namespace}.svc:{model_port(isvc)}"


def model_identity(isvc: InferenceService) -> str:
    """What names the model tier's model in the front's cache keys: a digest of what decides
    its answers (URI, runtime or server image, command and args, version). A model changed in
    place under the same URI is not seen (docs/front.md)."""
    model = isvc.spec.model
    server = model.server
    material = {
        "uri": model.uri,
        "format": model.format,
        "version": model.version,
        "server": (
            {"image": server.image, "command": server.command, "args": server.args}
            if server is not None
            else None
        ),
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def cores(cpu: int | str | None) -> int:
    """A CPU quantity rounded up to whole cores (at least 1, at most 64: the workers' range)."""
    return whole_cores(cpu, low=1, high=64)


def front_settings(
    isvc: InferenceService, *, default_drain_seconds: int, cpu_request: int | str | None
) -> ServingSettings:
    """The cache front's process: no model of its own, misses go to the model tier.

    ``cpu_request``: the front container's CPU request (the operator's default merged with
    front.resources), one worker per core unless front.workers says otherwise."""
    front = isvc.spec.front
    server = isvc.spec.model.server
    values = _process(isvc, default_drain_seconds) | _clients(isvc)
    values["upstream_url"] = upstream_url(isvc)
    if server is not None:
        values["upstream_model_name"] = server.model_name or isvc.model_name
    values["model_identity"] = model_identity(isvc)
    workers = front.workers if front is not None else None
    values["workers"] = workers if workers is not None else cores(cpu_request)
    if front is not None:
        chosen = {
            "upstream_max_queued": front.max_queued_misses,
            "upstream_batch_max_size": front.max_batch_size,
            "upstream_batch_concurrency": front.max_calls_in_flight,
        }
        values |= {setting: value for setting, value in chosen.items() if value is not None}
    return ServingSettings.model_validate(values)


def model_settings(isvc: InferenceService, *, default_drain_seconds: int) -> ServingSettings:
    """The built-in runtime as the model tier: the model, no cache (the front has it), no gRPC
    (the front calls it over REST)."""
    values = _process(isvc, default_drain_seconds) | _model(isvc)
    values |= {"grpc_enabled": False, "cache_enabled": False}
    return ServingSettings.model_validate(values)


def _env(settings: ServingSettings) -> dict[str, str]:
    """Only the settings the spec decided: everything else keeps the image's default."""
    unset = set(ServingSettings.model_fields) - settings.model_fields_set
    return settings.to_env(exclude=unset)


def front_env(
    isvc: InferenceService, *, default_drain_seconds: int, cpu_request: int | str | None
) -> dict[str, str]:
    """The plain environment variables of a front pod (the Redis URL not included)."""
    return _env(
        front_settings(isvc, default_drain_seconds=default_drain_seconds, cpu_request=cpu_request)
    )


def model_env(isvc: InferenceService, *, default_drain_seconds: int) -> dict[str, str]:
    """The environment variables of a built-in model tier pod (nothing from a Secret)."""
    return _env(model_settings(isvc, default_drain_seconds=default_drain_seconds))


def pod_env(isvc: InferenceService, *, default_drain_seconds: int) -> dict[str, str]:
    """The plain environment variables of a serving pod (the Redis URL not included)."""
    return _env(serving_settings(isvc, default_drain_seconds=default_drain_seconds))
