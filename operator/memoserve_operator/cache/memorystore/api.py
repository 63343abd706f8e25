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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


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


@dataclass(frozen=True)
class Operation:
    """A long-running operation; ``error_code`` is a gRPC status name when it failed."""

    name: str
    done: bool = False
    error_code: str | None = None
    error_message: str = ""


# gRPC status codes after which the same call can succeed later without a spec change: a
# quota that frees up, permissions granted, an operation in progress, the API coming back.
RETRYABLE = frozenset(
    {
        "UNKNOWN",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",  # created meanwhile: the next look finds it
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "INTERNAL",
        "UNAVAILABLE",
        "CANCELLED",
    }
)


class MemorystoreError(Exception):
    """A refused or failed call; ``code`` is the gRPC status name (``PERMISSION_DENIED``...)."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")

    @property
    def retryable(self) -> bool:
        """Whether trying the same request again later can succeed (INVALID_ARGUMENT cannot)."""
        return self.code in RETRYABLE


class MemorystoreApi(Protocol):
    """What the operator asks of the Cloud Memorystore for Redis v1 API."""

    default_project: str | None  # from Application Default Credentials, when they name one

    async def get_instance(self, name: str) -> Instance | None:
        """The instance, or None when it does not exist."""

    async def get_auth_string(self, name: str) -> str: ...

    async def create_instance(self, parent: str, instance_id: str, instance: Instance) -> str:
        """Start creating; returns the operation's name."""

    async def update_instance(self, instance: Instance, fields: Sequence[str]) -> str:
        """Start changing ``fields`` (proto field names: the update mask) of ``instance.name``."""

    async def upgrade_instance(self, name: str, redis_version: str) -> str: ...

    async def delete_instance(self, name: str) -> str: ...

    async def get_operation(self, name: str) -> Operation | None:
        """The operation, or None when the API no longer knows it."""

    async def close(self) -> None: ...
