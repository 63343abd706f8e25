"""Which Memorystore instance (Redis, Valkey or Redis Cluster) an InferenceService owns,
written on the InferenceService itself.

Before the operator asks Memorystore for an instance it records it, in one metadata patch
guarded by the resourceVersion it read:

- the finalizer ``serving.memoserve.dev/memorystore``: the InferenceService does not go away
  before its instance has been deleted (deletionPolicy Delete) or left behind (Retain);
- the annotation ``serving.memoserve.dev/memorystore-instance``: the instance's full name, the
  deletionPolicy and the engine (absent: Memorystore for Redis), so that the instance is found
  again even after the spec moved on (a new region, another cache source, the cache switched
  off).

Both go together once the instance is dealt with. Services without an operator-created instance
never get this finalizer (kopf's own one, for its delete handler, is a different matter).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import kopf

from memoserve_contract.resource.names import API_VERSION, KIND, qualified
from memoserve_operator.kube.client import Conflict, KubeClient, resource_of

FINALIZER = qualified("memorystore")
ANNOTATION = qualified("memorystore-instance")
ISVC = resource_of(API_VERSION, KIND)
ATTEMPTS = 3


@dataclass(frozen=True)
class Ref:
    """An InferenceService, for records and events."""

    namespace: str
    name: str
    uid: str | None

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> Ref:
        return cls(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid"))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Record:
    name: str
    deletion_policy: str  # Delete | Retain
    engine: str = "memorystore"  # whose API: memorystore | valkey | redisCluster

    @classmethod
    def read(cls, meta: Mapping[str, Any]) -> Record | None:
        raw = (meta.get("annotations") or {}).get(ANNOTATION)
        if FINALIZER not in (meta.get("finalizers") or []) or not raw:
            return None
        try:
            data = json.loads(raw)
            policy, engine = data.get("deletionPolicy", "Delete"), data.get("engine", "memorystore")
            return cls(str(data["name"]), str(policy), str(engine))
        except (ValueError, KeyError, TypeError):
            return None

    def encode(self) -> str:
        data = {"name": self.name, "deletionPolicy": self.deletion_policy}
        if self.engine != "memorystore":  # as records were before Valkey and Redis Cluster
            data["engine"] = self.engine
        return json.dumps(data)


async def write_record(
    kube: KubeClient, ref: Ref, meta: Mapping[str, Any], record: Record | None
) -> Mapping[str, Any]:
    """Record ``record`` (None: forget it); returns the metadata as it now is."""
    for attempt in range(ATTEMPTS):
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        if record is not None:
            finalizers.append(FINALIZER)
        patch: dict[str, Any] = {
            "finalizers": finalizers or None,
            "annotations": {ANNOTATION: record.encode() if record else None},
        }
        if version := meta.get("resourceVersion"):
            patch["resourceVersion"] = version  # 409 when someone else wrote since: re-read
        try:
            body = await kube.patch_metadata(ISVC, ref.namespace, ref.name, patch)
            return dict(body.get("metadata") or {})
        except Conflict:
            if attempt == ATTEMPTS - 1:
                raise
            current = await kube.get(ISVC, ref.namespace, ref.name)
            meta = (current or {}).get("metadata") or {}
    raise AssertionError("unreachable")


class EventSink(Protocol):
    """Kubernetes Events about an InferenceService."""

    def post(self, ref: Ref, type_: str, reason: str, message: str) -> None: ...


class KopfEvents:
    """Events through kopf's poster (from handlers: it needs kopf's context)."""

    def post(self, ref: Ref, type_: str, reason: str, message: str) -> None:
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"namespace": ref.namespace, "name": ref.name, "uid": ref.uid},
        }
        kopf.event(cast(Any, body), type=type_, reason=reason, message=message)
