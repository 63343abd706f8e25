"""What the watches last said about each child: an informer's store, fed by kopf's events.

The operator watches every child kind but Secrets anyway (to reconcile the owner on a change),
so a reconcile needs not ask the API server again for what it was just told: a GET per child
and a LIST per kind to prune cost ~13 reads per reconcile, and at 1000 InferenceServices those
reads were most of the API server's and the operator's work (docs/performance.md).

Rules that keep it safe:
- A miss is not an answer: the caller reads from the API server (start-up, before kopf's first
  listing arrived; a kind that is not watched, such as Secrets).
- Our own writes go in at once (the apply's response, a delete), so the next reconcile does
  not act on the state from before them.
- An entry is replaced only by a newer resourceVersion (events and responses may cross).
- What is stored drops ``metadata.managedFields`` (nothing compares it) and is kept as compact
  JSON, decoded on lookup: as dicts, a thousand services' children held ~4x the memory, and
  a lookup (a few per reconcile) costs tens of microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from memoserve_operator.builders.meta import MANAGED_BY

Object = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name
INSTANCE = "app.kubernetes.io/instance"
MANAGED = "app.kubernetes.io/managed-by"


class ChildIndex:
    def __init__(self, watched_kinds: frozenset[str]) -> None:
        self.watched_kinds = watched_kinds
        self._objects: dict[Key, _Entry] = {}
        # (kind, namespace, instance label) -> names: pruning looks up, never scans.
        self._by_instance: dict[Key, set[str]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def observe(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """A watch event (kopf: ADDED, MODIFIED, DELETED, or None for the initial listing)."""
        if event_type == "DELETED":
            self.forget(obj)
        else:
            self.remember(obj)

    def remember(self, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        if key is None:
            return
        known = self._objects.get(key)
        if known is not None:
            if _older(obj, known):
                return
            self._unlink(key, known)
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
        entry = self._objects[key] = _Entry(
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            instance=_instance(meta),
            body=orjson.dumps({**obj, "metadata": meta}),
        )
        if entry.instance is not None:
            self._by_instance.setdefault((key[0], key[1], entry.instance), set()).add(key[2])

    def forget(self, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        if key is not None and (known := self._objects.pop(key, None)) is not None:
            self._unlink(key, known)

    def _unlink(self, key: Key, known: _Entry) -> None:
        if known.instance is None:
            return
        names = self._by_instance.get((key[0], key[1], known.instance))
        if names is not None:
            names.discard(key[2])
            if not names:
                del self._by_instance[(key[0], key[1], known.instance)]

    def get(self, kind: str, namespace: str, name: str) -> Object | None:
        """The child as last seen, or None: not seen (ask the API server), or not watched."""
        if kind not in self.watched_kinds:
            return None
        entry = self._objects.get((kind, namespace, name))
        return None if entry is None else entry.decode()

    def owned(self, kind: str, namespace: str, instance: str) -> list[Object]:
        """The children of ``kind`` labelled as the InferenceService ``instance``'s."""
        names = self._by_instance.get((kind, namespace, instance), ())
        return [self._objects[(kind, namespace, name)].decode() for name in sorted(names)]


def _key(obj: Mapping[str, Any]) -> Key | None:
    meta = obj.get("metadata") or {}
    kind, name = obj.get("kind"), meta.get("name")
    if not kind or not name:
        return None
    return str(kind), str(meta.get("namespace") or ""), str(name)


@dataclass(frozen=True, slots=True)
class _Entry:
    uid: str
    resource_version: str
    instance: str | None
    body: bytes

    def decode(self) -> Object:
        obj: Object = orjson.loads(self.body)
        return obj


def _instance(meta: Mapping[str, Any]) -> str | None:
    """The instance label of a child the operator manages, else None."""
    labels = meta.get("labels") or {}
    if labels.get(MANAGED) != MANAGED_BY or not labels.get(INSTANCE):
        return None
    return str(labels[INSTANCE])


def _older(candidate: Mapping[str, Any], known: _Entry) -> bool:
    """Whether ``candidate`` is an older version of ``known`` (same uid, lower resourceVersion).

    resourceVersions are opaque strings by contract, but etcd's are integers, and comparing
    them is what keeps a late watch event from undoing a newer apply response. Anything else
    (another uid: recreated; not integers) counts as newer."""
    meta = candidate.get("metadata") or {}
    if str(meta.get("uid") or "") != known.uid:
        return False
    try:
        return int(meta.get("resourceVersion", "")) < int(known.resource_version)
    except ValueError:
        return False
