"""A canary's promotion without a step back (pure): while the stable Deployment rolls out to
what the canary ran, the canary keeps serving its share.

A promotion moves canary.model into spec.model and removes spec.canary, so the stable Deployment
NAME wants exactly the canary's pod template (the same config checksum) and rolls to it, one new
pod at a time. Pruning NAME-canary at once and sending every request to NAME would, for the
length of that rollout, hand the canary's share back to pods of the old model: a user who had
moved trafficPercent to 100 would see the old version's answers again. So while a live
NAME-canary runs what NAME now wants and NAME has not rolled out to it yet, the reconcile keeps
the canary's objects and the route as they are (neither applied nor pruned); once NAME serves
the new template on every replica, the next reconcile (the Deployment's status event) sends the
route to NAME alone and prunes the canary. A rollback (spec.canary removed, spec.model kept)
never waits: the stable Deployment wants its own template, not the canary's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memoserve_contract.canary import canary_name
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.pod import CHECKSUM_ANNOTATION
from memoserve_operator.children.index import ChildIndex
from memoserve_operator.kube.client import KubeClient, resource_of

Object = dict[str, Any]
DEPLOYMENT = resource_of("apps/v1", "Deployment")

# What stays as it is while a promotion waits: the canary's children (by kind: pruning keeps
# every stale object of these kinds meanwhile) and the route with the old weights.
KEPT_KINDS = frozenset(
    {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "HealthCheckPolicy",
        "GCPBackendPolicy",
        "HTTPRoute",
    }
)
ROUTE_KINDS = frozenset({"HTTPRoute"})


def checksum(deployment: Object | None) -> str | None:
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(CHECKSUM_ANNOTATION)
    return str(value) if value is not None else None


def promotion_pending(
    isvc: InferenceService,
    desired: Sequence[Object],
    stable: Object | None,
    canary: Object | None,
) -> bool:
    """Whether a promotion waits for the stable Deployment: ``stable`` and ``canary`` are the
    live NAME and NAME-canary Deployments (None: absent), ``desired`` what build_all wants."""
    if isvc.spec.canary is not None or canary is None or stable is None:
        return False
    wanted = next(
        (o for o in desired if o["kind"] == "Deployment" and o["metadata"]["name"] == isvc.name),
        None,
    )
    if wanted is None or checksum(wanted) is None or checksum(wanted) != checksum(canary):
        return False  # a rollback, or another change: nothing to wait for
    return not (checksum(stable) == checksum(wanted) and rolled_out(stable))


def rolled_out(deployment: Object) -> bool:
    """Every replica the Deployment wants runs its current template and is ready."""
    meta, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return False
    desired = int(spec.get("replicas", 1))
    ready, updated = int(status.get("readyReplicas") or 0), int(status.get("updatedReplicas") or 0)
    return min(ready, updated) >= desired


@dataclass
class Hold:
    """What a reconcile leaves as it is this time: ``kinds`` are not pruned, ``routes`` (live,
    for the status) are not applied; ``desired`` is the rest."""

    desired: list[Object]
    kinds: frozenset[str] = frozenset()
    routes: list[Object] = field(default_factory=list)


async def promotion_hold(
    kube: KubeClient, index: ChildIndex | None, isvc: InferenceService, desired: list[Object]
) -> Hold:
    """The Hold for ``isvc``: nothing held unless a promotion waits. Only a service without
    spec.canary that still has NAME-canary can be promoting: looked up in the index (no
    request) when it watches Deployments, else read."""
    if isvc.spec.canary is None:
        canary = await _deployment(kube, index, isvc, canary_name(isvc))
        stable = await _deployment(kube, index, isvc, isvc.name) if canary else None
        if promotion_pending(isvc, desired, stable, canary):
            routes = []
            for route in (o for o in desired if o["kind"] in ROUTE_KINDS):
                name = route["metadata"]["name"]
                live = index.get(route["kind"], isvc.namespace, name) if index else None
                if live is None:
                    resource = resource_of(route["apiVersion"], route["kind"])
                    live = await kube.get(resource, isvc.namespace, name)
                if live is not None:
                    routes.append(live)
            rest = [o for o in desired if o["kind"] not in ROUTE_KINDS]
            return Hold(rest, KEPT_KINDS, routes)
    return Hold(desired)


async def _deployment(
    kube: KubeClient, index: ChildIndex | None, isvc: InferenceService, name: str
) -> Object | None:
    if index is not None and "Deployment" in index.watched_kinds:
        owned = index.owned("Deployment", isvc.namespace, isvc.name)
        return next((d for d in owned if d["metadata"]["name"] == name), None)
    return await kube.get(DEPLOYMENT, isvc.namespace, name)
