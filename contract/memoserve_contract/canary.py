"""The canary of an InferenceService (spec.canary) as the service its pods serve.

A canary pod is configured exactly as a stable pod would be if spec.model were canary.model:
same name for clients, same cache namespace (its answers are kept apart by the model digest in
every key, and the promoted pods find them warm), same image, resources and cache. Only the
model and the replica bounds differ, so ``canary_service`` swaps those into a copy of the
resource and every builder of the stable pods builds the canary's from it.
"""

from __future__ import annotations

from memoserve_contract.resource.inferenceservice import InferenceService

CANARY_SUFFIX = "-canary"


def canary_name(isvc: InferenceService) -> str:
    """The canary's Deployment, Service, HPA, PDB and NetworkPolicy: NAME-canary."""
    return f"{isvc.name}{CANARY_SUFFIX}"


def canary_stats_namespace(isvc: InferenceService) -> str:
    """Where the canary's pods publish their cache counts (status: each version's hit ratio);
    the stable pods publish under their cache namespace, ns/name."""
    return f"{isvc.namespace}/{canary_name(isvc)}"


def canary_service(isvc: InferenceService) -> InferenceService | None:
    """``isvc`` as its canary pods serve it (None: no canary). spec.model.name is kept (the
    canary answers under the stable name), spec.replicas (kubectl scale) is the stable's."""
    canary = isvc.spec.canary
    if canary is None:
        return None
    model = canary.model.model_copy(update={"name": isvc.spec.model.name})
    spec = isvc.spec.model_copy(
        update={
            "model": model,
            "min_replicas": canary.min_replicas,
            "max_replicas": canary.max_replicas,
            "replicas": None,
            "canary": None,
        }
    )
    return isvc.model_copy(update={"spec": spec})


def traffic_percent(isvc: InferenceService) -> int:
    """The canary's share of the requests (0 without one)."""
    canary = isvc.spec.canary
    return canary.traffic_percent if canary is not None else 0
