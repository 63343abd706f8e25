"""How serving pods find their Redis: the ``<name>-redis`` Secret and the references to it.

The Redis connection never sits in the pod spec. Pods read ``MEMOSERVE_REDIS_URL`` from the
Secret ``<name>-redis`` (key ``url``), which the operator writes for every cache source:

- ``external``: url/host/port come from the spec, so the Secret is built here, offline. The
  password and CA stay in the user's own Secrets (``passwordSecretRef``, ``caSecretRef``) and the
  pods reference them directly: the operator never reads or copies a user's secret.
- ``memorystore`` / ``existingMemorystore``: the reconcile step learns host, port, AUTH string and
  server CA from the Memorystore API and passes them in as a ``RedisEndpoint``; the Secret then
  also holds ``password`` and ``ca.crt``.
- ``valkey`` / ``redisCluster`` / ``existingValkey`` / ``existingRedisCluster``: likewise from
  the Valkey or Redis Cluster API (``url``/``host``/``port`` name the discovery endpoint), never
  a password (IAM auth or none); the Secret also holds ``auth`` (``iam`` or ``password``), which
  pods of an existing instance read as MEMOSERVE_REDIS_AUTH: its mode is known only once read.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.cache_enums import TransitEncryptionMode
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import CACHE, Object, object_meta, redis_secret_name

URL_KEY = "url"
HOST_KEY = "host"
PORT_KEY = "port"
PASSWORD_KEY = "password"
CA_KEY = "ca.crt"
AUTH_KEY = "auth"


@dataclass(frozen=True)
class SecretKey:
    """One key of one Secret in the service's namespace."""

    name: str
    key: str
    optional: bool = False


@dataclass(frozen=True)
class RedisRefs:
    """Where each part of the Redis connection comes from, for the pod spec."""

    url: SecretKey
    password: SecretKey | None
    ca: SecretKey | None
    auth: SecretKey | None = None  # the auth mode (MEMOSERVE_REDIS_AUTH), when learned by reading


def redis_refs(isvc: InferenceService) -> RedisRefs | None:
    """The Secret keys the pods read; None when the service has no (enabled) cache."""
    cache = isvc.spec.cache
    source = cache.source if cache is not None else None
    if cache is None or source is None:
        return None
    own = redis_secret_name(isvc)
    url = SecretKey(own, URL_KEY)
    if source == "external" and cache.external is not None:
        ext = cache.external
        password = ext.password_secret_ref
        ca = ext.ca_secret_ref if ext.tls else None
        return RedisRefs(
            url,
            SecretKey(password.name, password.key) if password else None,
            SecretKey(ca.name, ca.key) if ca else None,
        )
    if source == "memorystore" and cache.memorystore is not None:
        store = cache.memorystore
        tls = store.transit_encryption_mode == TransitEncryptionMode.SERVER_AUTHENTICATION
        return RedisRefs(
            url,
            SecretKey(own, PASSWORD_KEY) if store.auth_enabled else None,
            SecretKey(own, CA_KEY) if tls else None,
        )
    if cache.valkey is not None or cache.redis_cluster is not None:
        # IAM auth (a plain env var, see pod_settings) or none: never a password.
        return RedisRefs(url, None, SecretKey(own, CA_KEY) if cache.server_ca_expected else None)
    if source in ("existingValkey", "existingRedisCluster"):
        # Its auth mode and TLS are learned when it is read: both optional, and no password.
        return RedisRefs(url, None, SecretKey(own, CA_KEY, True), SecretKey(own, AUTH_KEY, True))
    # An existing instance's AUTH and TLS settings are learned when it is read: both optional.
    return RedisRefs(url, SecretKey(own, PASSWORD_KEY, True), SecretKey(own, CA_KEY, True))


def build_redis_secret(isvc: InferenceService, endpoint: RedisEndpoint) -> Object:
    values = {URL_KEY: endpoint.url, HOST_KEY: endpoint.host, PORT_KEY: str(endpoint.port)}
    if endpoint.password is not None:
        values[PASSWORD_KEY] = endpoint.password
    if endpoint.ca_cert is not None:
        values[CA_KEY] = endpoint.ca_cert
    if isvc.spec.cache is not None and isvc.spec.cache.sharded:
        values[AUTH_KEY] = endpoint.auth
    # data, not stringData: stringData is write-only, so server-side apply would see a diff on
    # every reconcile.
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(isvc, CACHE, name=redis_secret_name(isvc)),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }
