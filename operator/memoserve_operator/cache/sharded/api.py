"""Memorystore for Valkey and Memorystore for Redis Cluster as the operator sees them: one
dataclass for both, and the calls the lifecycle makes.

Why one ``ShardedInstance`` with an ``engine`` field rather than a dataclass per API: the two
APIs describe the same thing (shards of a primary and its replicas, a node type, configs, IAM
or no AUTH, TLS or not, one Private Service Connect network, one discovery endpoint) and
differ only in spelling (``AUTH_MODE_IAM_AUTH`` / ``IAM_AUTH``, ``psc_configs`` /
``psc_auto_connections``, ``redis_configs`` / ``engine_configs``, ``clusters/`` /
``instances/``) and in a few fields one of them lacks (Redis Cluster has no labels, no engine
version, no mode). One dataclass keeps one plan and one comparison; the spellings stay in the
two Google adapters (``valkey``, ``cluster``), which map the user-facing names (the
resource's: ``IAM_AUTH | AUTH_DISABLED``, ``SERVER_AUTHENTICATION | DISABLED``, node types
without the ``REDIS_`` prefix) to each API's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from memoserve_operator.cache.gcp import InstanceApi

VALKEY, REDIS_CLUSTER = "valkey", "redisCluster"
IAM_AUTH, AUTH_DISABLED = "IAM_AUTH", "AUTH_DISABLED"
SERVER_AUTHENTICATION, DISABLED = "SERVER_AUTHENTICATION", "DISABLED"


@dataclass(frozen=True)
class ShardedInstance:
    """The fields the operator writes (desired) or reads (actual). In a desired instance, ""
    and None mean "the service's default" and are neither sent nor compared."""

    engine: str  # valkey | redisCluster
    name: str = ""  # projects/P/locations/R/instances/ID (Valkey), .../clusters/ID
    shard_count: int = 1
    replica_count: int | None = None
    node_type: str = ""  # HIGHMEM_MEDIUM, ... (no REDIS_ prefix)
    engine_version: str = ""  # Valkey only: VALKEY_8_0
    mode: str = ""  # Valkey only: CLUSTER | CLUSTER_DISABLED
    configs: Mapping[str, str] = field(default_factory=dict)  # engine_configs / redis_configs
    authorization_mode: str = IAM_AUTH
    transit_encryption_mode: str = SERVER_AUTHENTICATION
    network: str = ""  # the Private Service Connect network's full name
    labels: Mapping[str, str] = field(default_factory=dict)  # Valkey only
    # Output only.
    state: str = ""  # Google's word: CREATING, ACTIVE, UPDATING, DELETING
    discovery_address: str = ""
    discovery_port: int = 0
    node_addresses: tuple[str, ...] = ()  # the Private Service Connect endpoints' addresses
    status_message: str = ""

    @property
    def host(self) -> str:
        return self.discovery_address

    @property
    def port(self) -> int:
        return self.discovery_port

    @property
    def tls(self) -> bool:
        return self.transit_encryption_mode == SERVER_AUTHENTICATION

    @property
    def iam(self) -> bool:
        return self.authorization_mode == IAM_AUTH


class ShardedApi(InstanceApi[ShardedInstance], Protocol):
    """The Memorystore for Valkey v1 or Redis Cluster v1 API: the calls every engine has, and
    the server CA (GetCertificateAuthority / GetClusterCertificateAuthority)."""

    async def get_server_ca(self, name: str) -> tuple[str, ...]:
        """The instance's server CA certificates (PEM)."""
