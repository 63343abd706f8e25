"""The PodDisruptionBudget: node upgrades and scale-downs take serving pods one at a time."""

from __future__ import annotations

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import SERVING, Object, object_meta, selector_labels


def build_pdb(
    isvc: InferenceService,
    *,
    name: str | None = None,
    component: str = SERVING,
    match: dict[str, str] | None = None,
) -> Object:
    """The serving pods' (default) or another tier's (``name``, ``component``, ``match``)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(isvc, component, name=name),
        "spec": {
            # maxUnavailable, not minAvailable: with one replica minAvailable: 1 would block
            # every node drain forever.
            "maxUnavailable": 1,
            "selector": {"matchLabels": match if match is not None else selector_labels(isvc)},
            # A crash-looping pod protects nothing: let a drain evict it.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
