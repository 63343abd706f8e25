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

from collections.abc import Mapping, Sequence
from typing import Any

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.pod import CHECKSUM_ANNOTATION
from memoserve_operator.status.observe import serving_verdict

Object = Mapping[str, Any]

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
    rolled_out = checksum(stable) == checksum(wanted) and serving_verdict(stable, ()).ok
    return not rolled_out
