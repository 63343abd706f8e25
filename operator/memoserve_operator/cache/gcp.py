"""What the three Memorystore APIs (Redis, Valkey, Redis Cluster) have in common, as the
lifecycle sees them: long-running operations, errors by gRPC status name, and the calls on an
instance (a Redis Cluster "cluster" is an instance here too).

Each engine has its own small api module (``memorystore.api``, ``sharded.api``) with the
dataclass of its instances; none of them imports a Google library, so that the rest of the
operator never does either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


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


I = TypeVar("I")  # noqa: E741  # an engine's instance dataclass


class InstanceApi(Protocol[I]):
    """The calls every engine's API offers on its instances. Nothing waits for an operation:
    create, update and delete return the long-running operation's name at once."""

    default_project: str | None  # from Application Default Credentials, when they name one

    async def get_instance(self, name: str) -> I | None:
        """The instance, or None when it does not exist."""

    async def create_instance(self, parent: str, instance_id: str, instance: I) -> str:
        """Start creating; returns the operation's name."""

    async def update_instance(self, instance: I, fields: Sequence[str]) -> str:
        """Start changing ``fields`` (proto field names: the update mask) of ``instance``."""

    async def delete_instance(self, name: str) -> str: ...

    async def get_operation(self, name: str) -> Operation | None:
        """The operation, or None when the API no longer knows it."""

    async def close(self) -> None: ...
