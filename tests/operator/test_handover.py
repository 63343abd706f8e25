"""children/handover.py: when the replicas a Deployment has must be kept through an apply that
drops them (pure; the real API server's side is tests/e2e/test_apply_semantics.py)."""

from __future__ import annotations

from typing import Any

import pytest

from memoserve_operator.children.handover import handover

MANAGER = "memoserve-operator"
DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "iris", "namespace": "ml"},
    "spec": {"template": {}},
}


def live(replicas: int, manager: str, operation: str = "Apply") -> dict[str, Any]:
    owned = {"manager": manager, "operation": operation, "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    return {"metadata": {"managedFields": [owned]}, "spec": {"replicas": replicas}}


def test_replicas_the_operator_applied_are_handed_over_with_their_value() -> None:
    assert handover(DESIRED, live(3, MANAGER), MANAGER) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {"replicas": 3},
    }


@pytest.mark.parametrize(
    ("desired", "current"),
    [
        (DESIRED, live(3, "kube-controller-manager", "Update")),  # the HPA's already
        (DESIRED, live(3, MANAGER, "Update")),  # not an apply of ours
        (DESIRED | {"spec": {"replicas": 2}}, live(3, MANAGER)),  # still ours to set
        (DESIRED | {"kind": "Service"}, live(3, MANAGER)),
        (DESIRED, {"metadata": {}, "spec": {}}),
    ],
    ids=["hpa-owns", "update", "fixed", "not-a-deployment", "no-replicas"],
)
def test_nothing_to_hand_over(desired: dict[str, Any], current: dict[str, Any]) -> None:
    assert handover(desired, current, MANAGER) is None
