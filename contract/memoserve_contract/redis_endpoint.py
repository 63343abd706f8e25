"""Where a service's Redis answers and how a client talks to it: the ``RedisEndpoint``.

The operator's cache step learns it (from the spec for ``external``, from the Memorystore,
Valkey or Redis Cluster API otherwise); the builders write it into the ``<name>-redis`` Secret
and the NetworkPolicy; ``memoserve run`` and the status reader use it too. It lives in the
contract because all of them import it for the type.
"""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_contract.resource.cache import CacheEngine, RedisAuth
from memoserve_contract.resource.inferenceservice import InferenceService


@dataclass(frozen=True)
class RedisEndpoint:
    """Where a Redis answers, and what a client needs for it.

    ``host``/``port``: a standalone Redis's address, or a cluster's discovery endpoint.
    ``node_addresses``: a Valkey / Redis Cluster's Private Service Connect addresses (every one,
    e.g. from the API's pscConnections), where its nodes answer on ports other than the
    discovery endpoint's; the NetworkPolicy opens those ports to them (to any address while
    they are unknown).
    """

    host: str
    port: int
    tls: bool = False
    password: str | None = None  # Memorystore AUTH string (never for external: see builders.redis)
    ca_cert: str | None = None  # PEM of the server CA
    engine: CacheEngine = "redis"
    auth: RedisAuth = "password"  # iam: an access token of the pod's service account, no password
    cluster: bool = False  # clients speak the cluster protocol (MOVED, CLUSTER SHARDS)
    shards: int | None = None  # primaries; None: not sharded
    replicas_per_shard: int | None = None
    node_addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.auth == "iam" and self.password is not None:
            raise ValueError("an IAM-auth endpoint has no password")

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"{scheme}://{host}:{self.port}/0"


def external_endpoint(isvc: InferenceService) -> RedisEndpoint | None:
    """The endpoint of an ``external`` cache, straight from the spec (None for other sources)."""
    cache = isvc.spec.cache
    if cache is None or cache.source != "external" or cache.external is None:
        return None
    return RedisEndpoint(cache.external.host, cache.external.port, cache.external.tls)
