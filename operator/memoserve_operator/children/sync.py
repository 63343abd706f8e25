"""Make the children match: apply what differs, prune what is no longer wanted.

- Each desired object (stamped by ``compare.stamp``) is looked up (in the ``ChildIndex`` the
  watches keep, else read from the API server), and applied with server-side apply (one field
  manager, force) only when ``compare.needs_apply`` says the live one differs.
  An object of the same name that this InferenceService does not control is never taken over.
  A Deployment whose replicas an HPA takes over keeps its count meanwhile (``handover``).
- Children of ``OWNED_KINDS`` that are no longer desired (a kind no longer built, or a name:
  ``NAME-model`` once the split is off) are found by the instance and managed-by labels (in the
  index, else listed) and deleted when this InferenceService is their controller (with a uid
  precondition). A kind that is still desired but may have more names than it has now (Secrets,
  and the kinds of which a split service has two: ``TIERED_KINDS``) is read by name instead,
  without the index: the operator may not list Secrets (rbac.yaml), and ``child_names`` are the
  only names that are ever ours.

A refusal (403, 404 for a missing CRD, 409, 422) is collected per kind and the others go on; an
API that does not answer (5xx, timeouts) stops the pass: the next try starts over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.names import API_VERSION, KIND
from memoserve_operator.builders import OWNED_KINDS, child_names
from memoserve_operator.builders.meta import MANAGED_BY
from memoserve_operator.children.compare import needs_apply
from memoserve_operator.children.handover import hand_over_replicas
from memoserve_operator.children.index import ChildIndex
from memoserve_operator.kube.client import Conflict, KubeClient, KubeError, resource_of
from memoserve_operator.metrics import Metrics

Object = dict[str, Any]


Named = tuple[str, str]  # kind, name


@dataclass
class Children:
    """The children as they are after a pass, by (kind, name), and what was refused, by kind."""

    live: dict[Named, Object | None] = field(default_factory=dict)
    failures: dict[str, KubeError] = field(default_factory=dict)


def owner_of(child: Object) -> tuple[str, str] | None:
    """(namespace, name) of the InferenceService that controls ``child``."""
    meta = child.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and (ref.get("apiVersion"), ref.get("kind")) == (
            API_VERSION,
            KIND,
        ):
            return meta.get("namespace", ""), ref.get("name", "")
    return None


def controlled_by(obj: Object, uid: str | None) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return uid is not None and any(r.get("controller") and r.get("uid") == uid for r in refs)


async def sync_children(
    kube: KubeClient,
    metrics: Metrics,
    isvc: InferenceService,
    desired: list[Object],
    *,
    field_manager: str,
    keep: frozenset[str] = frozenset(),
    index: ChildIndex | None = None,
) -> Children:
    """Apply ``desired`` (in order), then prune owned kinds neither desired nor in ``keep``."""
    children = Children()
    index = index if index is not None else ChildIndex(frozenset())
    for obj in desired:
        kind, named = obj["kind"], (obj["kind"], obj["metadata"]["name"])
        try:
            children.live[named] = await _apply(kube, metrics, isvc, obj, field_manager, index)
        except KubeError as exc:
            if exc.transient:
                raise
            children.failures.setdefault(kind, exc)
            children.live[named] = None
    wanted = {obj["kind"] for obj in desired}
    names = set(children.live)
    for api_version, kind in OWNED_KINDS:
        # Every name a kind can have is desired: nothing of it can be stale.
        if kind in keep or (kind in wanted and len(child_names(isvc, kind)) == 1):
            continue
        try:
            await _prune(kube, metrics, isvc, api_version, kind, index, names)
        except KubeError as exc:
            if exc.transient:
                raise
            children.failures.setdefault(kind, exc)
    return children


async def _apply(
    kube: KubeClient,
    metrics: Metrics,
    isvc: InferenceService,
    obj: Object,
    field_manager: str,
    index: ChildIndex,
) -> Object:
    kind, name = obj["kind"], obj["metadata"]["name"]
    current = index.get(kind, isvc.namespace, name)
    if current is None:
        current = await kube.get(resource_of(obj["apiVersion"], kind), isvc.namespace, name)
    if current is not None and not controlled_by(current, isvc.metadata.uid):
        where = f"{isvc.namespace}/{name}"
        message = "exists and is not controlled by this InferenceService (delete or rename it)"
        raise Conflict(409, "apply", kind, where, message)
    if needs_apply(obj, current):
        if await hand_over_replicas(kube, obj, current, field_manager):  # handover.py
            metrics.writes.labels("apply", kind).inc()
        current = await kube.apply(obj, field_manager)
        metrics.writes.labels("apply", kind).inc()
        index.remember(current)
    assert current is not None
    return current


async def _prune(
    kube: KubeClient,
    metrics: Metrics,
    isvc: InferenceService,
    api_version: str,
    kind: str,
    index: ChildIndex,
    wanted: set[tuple[str, str]],
) -> None:
    resource, namespace = resource_of(api_version, kind), isvc.namespace
    if kind in index.watched_kinds:
        stale = index.owned(kind, namespace, isvc.name)
    elif kind == "Secret" or any(k == kind for k, _ in wanted):
        stale = []
        for name in child_names(isvc, kind):
            if (kind, name) not in wanted:
                found = await kube.get(resource, namespace, name)
                stale += [found] if found is not None else []
    else:
        labels = f"app.kubernetes.io/instance={isvc.name},app.kubernetes.io/managed-by={MANAGED_BY}"
        stale = await kube.list(resource, namespace, labels)
    for obj in stale:
        if (kind, obj["metadata"]["name"]) in wanted:
            continue
        if controlled_by(obj, isvc.metadata.uid):
            meta = obj["metadata"]
            await kube.delete(resource, namespace, meta["name"], meta["uid"])
            metrics.writes.labels("delete", kind).inc()
            index.forget(obj)
