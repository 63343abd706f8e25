"""Server-side apply as the real API server does it, where the fake of tests/operator cannot tell.

tests/operator/fake_api.py answers an apply with a merge patch: a field left out of the next apply
stays there, and nobody owns anything. What depends on real apply semantics is proven here:
- a switched-off feature's children are pruned, and a field the operator no longer renders is
  removed from the live object that stays (the Service's NEG and BackendConfig annotations once
  the Ingress is switched off, the Deployment's Redis env once the cache is), while a field
  someone else set (an annotation added with kubectl) stays;
- the operator writes its children with one field manager, by apply only;
- switching autoscaling on (spec.replicas out, an HPA in) leaves the Deployment's replicas where
  they were: dropping a field from an apply removes it, and a Deployment without replicas is
  defaulted to 1, which would kill pods until the HPA scales back (children/handover.py hands
  the field over first).
"""

from __future__ import annotations

from typing import Any

from memoserve_operator.children.compare import DIGEST_ANNOTATION
from memoserve_operator.settings import OperatorSettings
from tests.e2e.helpers import apply_isvc, wait_for
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

SPEC = {"model": {"uri": "gs://my-models/iris/sklearn/", "format": "sklearn"}}
EXPOSED = SPEC | {
    "cache": {"external": {"host": "redis.example.com"}},
    "ingress": {"enabled": True, "host": "iris.example.com"},
}
NEG = "cloud.google.com/neg"
FIELD_MANAGER = OperatorSettings().field_manager


def _live(plane: ControlPlane, kind: str, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = plane.get(kind, "iris", "-n", namespace, "--show-managed-fields")
    return found


def _annotations(plane: ControlPlane, kind: str, namespace: str) -> dict[str, str]:
    """{} while the object does not exist yet."""
    found = plane.get_or_none(kind, "iris", "-n", namespace) or {"metadata": {}}
    return dict(found["metadata"].get("annotations") or {})


def test_a_switched_off_feature_takes_its_fields_but_not_others(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply_isvc(control_plane, namespace, "iris", EXPOSED)
    wait_for(lambda: NEG in _annotations(control_plane, "service", namespace), "the NEG annotation")
    control_plane.kubectl("annotate", "service", "iris", "-n", namespace, "team=ml")

    apply_isvc(control_plane, namespace, "iris", SPEC)  # no cache, no Ingress
    wait_for(
        lambda: control_plane.get_or_none("ingress", "iris", "-n", namespace) is None,
        "the Ingress to be pruned",
    )
    wait_for(
        lambda: NEG not in _annotations(control_plane, "service", namespace),
        "the operator's apply to remove the NEG annotation it no longer renders",
    )
    service = _live(control_plane, "service", namespace)
    annotations = service["metadata"]["annotations"]
    assert "cloud.google.com/backend-config" not in annotations
    assert annotations["team"] == "ml"  # someone else's: never the operator's to remove
    deployment = _live(control_plane, "deployment", namespace)
    wait_for(
        lambda: (
            not any(
                e["name"] == "MEMOSERVE_REDIS_URL"
                for e in _live(control_plane, "deployment", namespace)["spec"]["template"]["spec"][
                    "containers"
                ][0]["env"]
            )
        ),
        "the Redis env to go with the cache",
    )
    for child in (service, deployment):
        ours = {
            m["operation"]
            for m in child["metadata"]["managedFields"]
            if m["manager"] == FIELD_MANAGER
        }
        assert ours == {"Apply"}, child["metadata"]["managedFields"]


def test_autoscaling_switched_on_keeps_the_replicas_there_are(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply_isvc(control_plane, namespace, "iris", SPEC | {"replicas": 2})
    wait_for(
        lambda: control_plane.get_or_none("deployment", "iris", "-n", namespace),
        "the Deployment",
    )
    before = _live(control_plane, "deployment", namespace)
    assert before["spec"]["replicas"] == 2

    apply_isvc(control_plane, namespace, "iris", SPEC | {"minReplicas": 2, "maxReplicas": 6})
    wait_for(
        lambda: (
            _annotations(control_plane, "deployment", namespace)[DIGEST_ANNOTATION]
            != before["metadata"]["annotations"][DIGEST_ANNOTATION]
        ),
        "the operator to apply the Deployment without replicas",
    )
    after = _live(control_plane, "deployment", namespace)
    assert after["spec"]["replicas"] == 2
    # One write (the operator's new digest annotation, which a Deployment counts as a new
    # generation), not 2 -> 1 (the default) and 1 -> 2 (the HPA) after it.
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    owners = {
        m["manager"]
        for m in after["metadata"]["managedFields"]
        if "f:replicas" in m.get("fieldsV1", {}).get("f:spec", {})
    }
    assert FIELD_MANAGER not in owners  # the HPA's to change from now on
