"""The gRPC plumbing the three Google clients share (``memorystore.google``, ``sharded.valkey``,
``sharded.cluster``): credentials, emulator channels, one deadline per call and no
client-side retry (the operator retries on its own schedule), errors as ``MemorystoreError``,
long-running operations as ``Operation``.

Credentials are Application Default Credentials (Workload Identity on GKE); there is no
fallback to anonymous access. Only an explicit emulator endpoint
(``MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT``) gets a plaintext channel without credentials.
"""

from __future__ import annotations

import asyncio
from typing import Any

import google.auth
import grpc  # type: ignore[import-untyped]  # no stubs
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.longrunning import operations_pb2  # type: ignore[import-untyped]
from google.rpc import code_pb2  # type: ignore[import-untyped]

from memoserve_operator.cache.gcp import MemorystoreError, Operation

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TIMEOUT_SECONDS = 30.0

_EXPECTED = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    grpc.RpcError,
    TimeoutError,
)


def emulator_channel(endpoint: str) -> Any:
    """A plaintext channel to an emulator's gRPC port (HOST:PORT, http:// tolerated)."""
    return grpc.aio.insecure_channel(endpoint.removeprefix("http://"))


async def default_credentials() -> tuple[Any, str | None]:
    """Application Default Credentials and their project; no credentials is an error."""
    try:
        # Reads files and may ask the metadata server: not on the event loop.
        return await asyncio.to_thread(google.auth.default, scopes=SCOPES)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise MemorystoreError("UNAUTHENTICATED", f"no Google credentials: {exc}") from None


def to_error(exc: Exception) -> MemorystoreError:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        status = exc.grpc_status_code
        code = status.name if status is not None else "UNKNOWN"
        return MemorystoreError(code, str(exc.message))
    if isinstance(exc, auth_exceptions.RefreshError):
        return MemorystoreError("UNAUTHENTICATED", str(exc))
    if isinstance(exc, grpc.aio.AioRpcError):
        return MemorystoreError(exc.code().name, str(exc.details()))
    if isinstance(exc, TimeoutError):
        return MemorystoreError("DEADLINE_EXCEEDED", f"no answer within {TIMEOUT_SECONDS:.0f} s")
    return MemorystoreError("UNAVAILABLE", repr(exc))  # transport errors, RetryError


async def call(client: Any, method: str, **kwargs: Any) -> Any:
    """``client.method(**kwargs)`` with the deadline, errors as ``MemorystoreError``."""
    try:
        return await getattr(client, method)(**kwargs, retry=None, timeout=TIMEOUT_SECONDS)
    except _EXPECTED as exc:
        raise to_error(exc) from None


async def get_or_none(client: Any, method: str, **kwargs: Any) -> Any:
    """Like ``call``, but None for NOT_FOUND."""
    try:
        return await call(client, method, **kwargs)
    except MemorystoreError as exc:
        if exc.code == "NOT_FOUND":
            return None
        raise


async def get_operation(client: Any, name: str) -> Operation | None:
    request = operations_pb2.GetOperationRequest(name=name)
    found = await get_or_none(client, "get_operation", request=request)
    if found is None:
        return None
    if found.HasField("error"):
        code = code_pb2.Code.Name(found.error.code)
        return Operation(found.name, True, code, found.error.message)
    return Operation(found.name, bool(found.done))


async def started(client: Any, method: str, **kwargs: Any) -> str:
    """Start a long-running call; the operation's name."""
    operation = await call(client, method, **kwargs)
    return str(operation.operation.name)
