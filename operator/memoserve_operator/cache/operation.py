"""The long-running operation in ``status.cache.operation``, looked at on a later reconcile
(never awaited), and what a refused create means (the same for every engine)."""

from __future__ import annotations

from typing import Any

from memoserve_operator.cache.gcp import InstanceApi, MemorystoreError

# Answers to a create that mean it was not accepted (unlike a timeout, after which it may have):
# no instance can exist, so the record made before the call goes again.
REFUSED = frozenset(
    {
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
        "NOT_FOUND",
        "UNIMPLEMENTED",
    }
)


async def look(
    api: InstanceApi[Any], name: str | None
) -> tuple[MemorystoreError | None, str | None]:
    """(how the operation ``name`` failed, or its name while it still runs); (None, None) when
    there is none, it succeeded, or the API forgot it."""
    if not name:
        return None, None
    operation = await api.get_operation(name)
    if operation is None or (operation.done and operation.error_code is None):
        return None, None
    if operation.done:
        code = operation.error_code or "UNKNOWN"
        return MemorystoreError(code, f"operation failed: {operation.error_message}"), None
    return None, operation.name
