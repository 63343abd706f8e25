"""What a serving pod of an InferenceService is configured with: the spec -> settings mapping.

Pure, and shared: the operator puts ``pod_env()`` into the Deployment (``builders.env`` adds the
values that come from Secrets), and ``memoserve run`` reads the same values back with
``ServingSettings.from_env()`` as a pod does. Only the settings the spec decides are emitted:
everything else keeps the image's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def serving_settings(isvc: InferenceService, *, default_drain_seconds: int) -> ServingSettings:
    """The serving process's settings, minus the Redis URL (an env var from a Secret)."""
    spec = isvc.spec
    values: dict[str, Any] = {
        "model_name": isvc.model_name,
        "model_uri": spec.model.uri,
        "model_format": spec.model.format,
        "model_dir": MODEL_DIR,
        "port": HTTP_PORT,
        "drain_seconds": drain_seconds(isvc, default_drain_seconds),
        "termination_log": TERMINATION_LOG,
    }
    if spec.model.version is not None:
        values["model_version"] = spec.model.version
    values["grpc_enabled"] = spec.grpc_enabled
    if spec.grpc_enabled:
        values["grpc_port"] = GRPC_PORT
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
    if spec.batching is not None:
        if spec.batching.max_batch_size is not None:
            values["batch_max_size"] = spec.batching.max_batch_size
        if spec.batching.max_wait_ms is not None:
            values["batch_max_wait_ms"] = spec.batching.max_wait_ms
    return ServingSettings.model_validate(values)


def pod_env(isvc: InferenceService, *, default_drain_seconds: int) -> dict[str, str]:
    """The plain environment variables of a serving pod (the Redis URL not included)."""
    served = serving_settings(isvc, default_drain_seconds=default_drain_seconds)
    unset = set(ServingSettings.model_fields) - served.model_fields_set
    return served.to_env(exclude=unset)
