"""A canary (spec.canary) reconciled against the fake API server: added (its objects applied,
nothing written in steady state), ready or not (CanaryReady, status.canary), promoted and rolled
back (the canary's objects pruned by name, with a uid precondition).

The fake's server-side apply is a merge patch; these tests look only at which objects are
written or deleted and at the status, which that does not change. That the API server takes
every canary object by server-side apply, and prunes them, is tests/e2e/test_canary.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders import build_all
from memoserve_operator.reconcile import Reconciler
from tests.operator import test_reconcile_split as split
from tests.operator.fake_api import (
    ISVC,
    NAMESPACE,
    FakeKube,
    isvc_body,
    key,
    mark,
    path,
    requests,
    writes,
)
from tests.operator.helpers import SETTINGS

pytestmark = pytest.mark.kmock(cls=FakeKube)

# The split's harness: the fake API server, a reconciler with and without the watches' index,
# and the Deployment controller's status writes.
api, reconciler = split.api, split.reconciler  # fixtures
applied, conditions, set_status, store = (
    split.applied,
    split.conditions,
    split.set_status,
    split.store,
)

V1 = {"uri": "gs://my-models/iris/v1/", "format": "sklearn"}
V2 = {"uri": "gs://my-models/iris/v2/", "format": "sklearn"}
CACHE = {"external": {"host": "redis.example.com"}}
CANARY = {"model": V2, "trafficPercent": 20, "minReplicas": 1, "maxReplicas": 3}
GATEWAY = {"parentRef": {"name": "shared", "namespace": "infra"}}
WITH_CANARY = {"model": V1, "cache": CACHE, "gateway": GATEWAY, "canary": CANARY}
PROMOTED = {"model": V2, "cache": CACHE, "gateway": GATEWAY}
ROLLED_BACK = {"model": V1, "cache": CACHE, "gateway": GATEWAY}
CANARY_KINDS = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.gke.io/v1", "HealthCheckPolicy"),
    ("networking.gke.io/v1", "GCPBackendPolicy"),
]
READY = {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}


def deleted(calls: list[Any]) -> list[str]:
    return sorted(str(r.url.path) for r in calls if r.method.value == "DELETE")


def status(api: Any) -> dict[str, Any]:
    found: dict[str, Any] = api.objects[ISVC, NAMESPACE, "iris"]["status"]
    return json.loads(json.dumps(found, default=dict))


async def reconcile(reconciler: Reconciler) -> None:
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")


async def test_a_canary_is_applied_then_nothing_is_written(
    api: Any, reconciler: Reconciler
) -> None:
    body = isvc_body(**WITH_CANARY)
    store(api, body)
    await reconcile(reconciler)
    wanted = build_all(InferenceService.from_body(body), SETTINGS)
    assert applied(writes(api)) == [(o["kind"], o["metadata"]["name"]) for o in wanted]
    for _, kind in CANARY_KINDS:
        assert (kind, "iris-canary") in applied(writes(api))
    assert status(api)["canary"] == {
        "trafficPercent": 20,
        "replicas": 0,
        "readyReplicas": 0,
        "replicaSummary": "0/1",
    }

    since = mark(api)
    await reconcile(reconciler)
    assert writes(api, since) == []
    assert {r.method.value for r in requests(api, since)} == {"GET"}


async def test_ready_waits_for_the_canary(api: Any, reconciler: Reconciler) -> None:
    # No route: its status (IngressReady) would be one more thing Ready waits for.
    store(api, isvc_body(model=V1, cache=CACHE, canary=CANARY))
    await reconcile(reconciler)
    set_status(api, reconciler, "iris", READY)  # the stable pods serve; the canary loads
    await reconcile(reconciler)
    found = conditions(api)
    assert found["ServingReady"] == ("True", "ReplicasReady", "1/1 replicas ready")
    assert found["CanaryReady"][:2] == ("False", "RolloutInProgress")
    assert found["CanaryReady"][2].startswith(
        "canary (20% of requests); the stable version serves the rest: "
    )
    assert found["Ready"][0] == "False"  # Argo CD: Progressing

    set_status(api, reconciler, "iris-canary", READY)
    await reconcile(reconciler)
    found = conditions(api)
    assert found["CanaryReady"] == (
        "True", "ReplicasReady", "canary (20% of requests): 1/1 replicas ready"
    )  # fmt: skip
    assert found["Ready"][0] == "True"
    assert status(api)["canary"]["replicaSummary"] == "1/1"

    since = mark(api)
    await reconcile(reconciler)
    assert writes(api, since) == []


def weights(api: Any) -> list[tuple[str, int]]:
    route = api.objects[key("gateway.networking.k8s.io/v1", "HTTPRoute"), NAMESPACE, "iris"]
    (rule,) = route["spec"]["rules"]
    return [(b["name"], b["weight"]) for b in rule["backendRefs"]]


async def test_promotion_keeps_the_canary_serving_until_the_stable_pods_run_it(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(**WITH_CANARY | {"canary": CANARY | {"trafficPercent": 100}}))
    await reconcile(reconciler)
    deployments = key("apps/v1", "Deployment")
    canary = api.objects[deployments, NAMESPACE, "iris-canary"]["spec"]["template"]
    store(api, isvc_body(generation=2, **PROMOTED))
    since = mark(api)
    await reconcile(reconciler)
    # The stable Deployment rolls to exactly what the canary ran...
    assert applied(writes(api, since)) == [("Deployment", "iris")]
    stable = api.objects[deployments, NAMESPACE, "iris"]["spec"]["template"]
    annotation = "serving.memoserve.dev/config-checksum"
    assert (
        stable["metadata"]["annotations"][annotation]
        == canary["metadata"]["annotations"][annotation]
    )
    # ...while the canary keeps its share: nothing pruned, the route as it was.
    assert deleted(writes(api, since)) == []
    assert weights(api) == [("iris", 0), ("iris-canary", 100)]
    assert "canary" not in status(api)
    # The status still reads the route it keeps (no "does not exist yet").
    assert "accept the HTTPRoute" in conditions(api)["IngressReady"][2]

    set_status(api, reconciler, "iris", READY)  # every stable pod runs the new template
    since = mark(api)
    await reconcile(reconciler)
    assert deleted(writes(api, since)) == sorted(
        path(api_version, kind, "iris-canary") for api_version, kind in CANARY_KINDS
    )
    deletes = [r for r in writes(api, since) if r.method.value == "DELETE"]
    assert all(r.data["preconditions"]["uid"] for r in deletes)
    assert weights(api) == [("iris", 100)]

    since = mark(api)
    await reconcile(reconciler)
    assert writes(api, since) == []


async def test_rollback_prunes_the_canary_and_leaves_the_stable_pods(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(**WITH_CANARY))
    await reconcile(reconciler)
    store(api, isvc_body(generation=2, **ROLLED_BACK))
    since = mark(api)
    await reconcile(reconciler)
    assert deleted(writes(api, since)) == sorted(
        path(api_version, kind, "iris-canary") for api_version, kind in CANARY_KINDS
    )
    # The stable Deployment, Service, PDB and NetworkPolicy were already what they must be; the
    # route sends everything to the stable Service again, at once (no rollout to wait for).
    assert applied(writes(api, since)) == [("HTTPRoute", "iris")]
    assert weights(api) == [("iris", 100)]
