"""Memorystore for Redis as the operator sees it: a small async interface and its data types.

The lifecycle (``step``) talks to ``MemorystoreApi`` only. The real implementation
(``google.GoogleMemorystore``, opened by ``connector``) wraps google-cloud-redis's async client
over gRPC, in production as in tests: only the endpoint differs
(``MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT`` points it at ``memoserve dev memorystore-emulator``).
Nothing here waits for an operation to finish: a create, update, upgrade or delete returns the
long-running operation's name at once, and the caller looks at it again on a later reconcile.

Enumerations are the API's own names as strings (``"BASIC"``, ``"READY"``, ...), so that the
rest of the operator never imports google-cloud-redis.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Operation and MemorystoreError are the three engines' (cache.gcp); named here too, as the
# Memorystore for Redis emulator's tests import them from this module.
from memoserve_operator.cache.gcp import InstanceApi, MemorystoreError, Operation

__all__ = ["Instance", "MemorystoreApi", "MemorystoreError", "Operation", "State"]


class State(enum.StrEnum):
    """google.cloud.redis.v1.Instance.State."""

    UNSPECIFIED = "STATE_UNSPECIFIED"
    CREATING = "CREATING"
    READY = "READY"
    UPDATING = "UPDATING"
    DELETING = "DELETING"
    REPAIRING = "REPAIRING"
    MAINTENANCE = "MAINTENANCE"
    IMPORTING = "IMPORTING"
    FAILING_OVER = "FAILING_OVER"


@dataclass(frozen=True)
class Instance:
    """The fields of an instance the operator writes (desired) or reads (actual).

    In a desired instance, empty strings and ``replica_count=None`` mean "the service's default"
    and are neither sent nor compared.
    """

    name: str = ""
    tier: str = "BASIC"
    memory_size_gb: int = 1
    redis_version: str = ""
    location_id: str = ""  # the zone
    authorized_network: str = ""
    connect_mode: str = "DIRECT_PEERING"
    auth_enabled: bool = False
    transit_encryption_mode: str = "DISABLED"
    replica_count: int | None = None
    read_replicas_mode: str = ""
    redis_configs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    display_name: str = ""
    # Output only.
    state: str = ""
    host: str = ""
    port: int = 0
    status_message: str = ""
    server_ca_certs: tuple[str, ...] = ()  # PEM, newest last

    @property
    def tls(self) -> bool:
        return self.transit_encryption_mode == "SERVER_AUTHENTICATION"


class MemorystoreApi(InstanceApi[Instance], Protocol):
    """What the operator asks of the Cloud Memorystore for Redis v1 API: the calls every
    engine has (``gcp.InstanceApi``), the AUTH string and version upgrades."""

    async def get_auth_string(self, name: str) -> str: ...

    async def upgrade_instance(self, name: str, redis_version: str) -> str: ...
