"""Shared by the operator-flow tests: settings pointed at the emulator, an events recorder,
InferenceServices with a Memorystore cache, and readers of what the operator wrote."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from memoserve_operator.cache.record import ANNOTATION, FINALIZER, Ref
from memoserve_operator.settings import OperatorSettings
from tests.memorystore.emulator_thread import EmulatorThread
from tests.operator.fake_api import ISVC, NAMESPACE, isvc_body, key
from tests.operator.helpers import SETTINGS

PROJECT, REGION = "proj-1", "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
INSTANCE = f"{PARENT}/instances/{NAMESPACE}-iris"


def settings_for(emulator: EmulatorThread, **changes: Any) -> OperatorSettings:
    """Fast polls and backoff, no memory of ready answers: every reconcile asks."""
    return SETTINGS.model_copy(
        update={
            "gcp_project": PROJECT,
            "gcp_region": REGION,
            "memorystore_endpoint": emulator.grpc_target,
            "memorystore_poll_seconds": 0.05,
            "memorystore_max_backoff_seconds": 0.3,
            "memorystore_refresh_seconds": 0.0,
        }
        | changes
    )


@dataclass
class Events:
    """An EventSink that keeps (type, reason, message)."""

    posted: list[tuple[str, str, str]] = field(default_factory=list)

    def post(self, ref: Ref, type_: str, reason: str, message: str) -> None:
        assert (ref.namespace, ref.name) == (NAMESPACE, "iris")
        self.posted.append((type_, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.posted]


def memorystore_body(generation: int = 1, **memorystore: Any) -> dict[str, Any]:
    return isvc_body(generation=generation, cache={"memorystore": memorystore})


def stored(api: Any, resource: str = ISVC, name: str = "iris") -> dict[str, Any]:
    return dict(api.objects[resource, NAMESPACE, name])


def exists(api: Any, resource: str, name: str) -> bool:
    try:
        return not api.objects[resource, NAMESPACE, name].deleted
    except KeyError:
        return False


def condition(api: Any, type_: str = "CacheReady") -> tuple[str, str, str]:
    status = stored(api).get("status") or {}
    found = next((c for c in status.get("conditions", []) if c["type"] == type_), {})
    return found.get("status", ""), found.get("reason", ""), found.get("message", "")


def cache_status(api: Any) -> dict[str, Any]:
    return dict((stored(api).get("status") or {}).get("cache") or {})


def secret(api: Any) -> dict[str, str]:
    data = stored(api, key("v1", "Secret"), "iris-redis")["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def recorded(api: Any) -> str | None:
    """The instance the InferenceService records as its own (finalizer and annotation)."""
    meta = stored(api)["metadata"]
    if FINALIZER not in (meta.get("finalizers") or []):
        assert ANNOTATION not in (meta.get("annotations") or {})
        return None
    value: str = meta["annotations"][ANNOTATION]
    return value
