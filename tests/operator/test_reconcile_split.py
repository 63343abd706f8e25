"""The cache-front split (spec.front.enabled) reconciled against the fake API server: both tiers
applied, nothing written in steady state (with and without the watches' index), readiness from
both tiers, and the model tier pruned by name when the split is switched off.

Why the fake suffices: as in test_reconcile.py, the decisions are in the requests. The one read
of a live object after a change (the front's env gone once the split is off) holds on the fake
only because a merge patch replaces a list whole; tests/e2e/test_front.py checks it at the API
server, where the env entries the operator no longer applies are removed by apply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import Configuration

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders import OWNED_KINDS, build_all
from memoserve_operator.children.index import ChildIndex
from memoserve_operator.kube.client import KubeClient
from memoserve_operator.metrics import Metrics
from memoserve_operator.reconcile import Reconciler
from tests.operator.fake_api import (
    APPLY,
    ISVC,
    NAMESPACE,
    FakeKube,
    declare_resources,
    isvc_body,
    key,
    mark,
    path,
    requests,
    writes,
)
from tests.operator.helpers import SETTINGS

pytestmark = pytest.mark.kmock(cls=FakeKube)

EXTERNAL = {"external": {"host": "redis.example.com"}}
FRONT = {"enabled": True, "minReplicas": 2, "maxReplicas": 4}
SPLIT = {"cache": EXTERNAL, "front": FRONT, "minReplicas": 1, "maxReplicas": 3}
TIERED = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
]
READY = {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}


@pytest.fixture
def api(kmock: Any) -> Any:
    declare_resources(kmock)
    return kmock


@pytest.fixture(params=["read", "indexed"])
async def reconciler(api: Any, request: Any) -> AsyncIterator[Reconciler]:
    """Without the index every child is read from the API server; with it, only what the
    watches have not told (here: our own writes, remembered at once)."""
    kube = await KubeClient.open(Configuration(host=str(api.url)))
    index = None
    if request.param == "indexed":
        index = ChildIndex(frozenset(kind for _, kind in OWNED_KINDS if kind != "Secret"))
    yield Reconciler(kube, SETTINGS, Metrics(), index=index)
    await kube.close()


def store(api: Any, body: dict[str, Any]) -> None:
    api.objects[ISVC, NAMESPACE, body["metadata"]["name"]] = body


def applied(calls: list[Any]) -> list[tuple[str, str]]:
    return [
        (r.data["kind"], r.data["metadata"]["name"])
        for r in calls
        if r.headers.get("Content-Type") == APPLY
    ]


def conditions(api: Any) -> dict[str, tuple[str, str, str]]:
    found = api.objects[ISVC, NAMESPACE, "iris"]["status"]["conditions"]
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in found}


def set_status(api: Any, reconciler: Reconciler, name: str, status: dict[str, Any]) -> None:
    """The Deployment controller's work, and the watch event that tells the index."""
    live = api.objects[key("apps/v1", "Deployment"), NAMESPACE, name]
    live.patch({"status": status})
    if reconciler.index is not None:
        plain = json.loads(json.dumps(live, default=dict))
        reconciler.index.observe("MODIFIED", {"kind": "Deployment", **plain})


async def test_split_applies_both_tiers_then_writes_nothing(
    api: Any, reconciler: Reconciler
) -> None:
    body = isvc_body(**SPLIT)
    store(api, body)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    wanted = build_all(InferenceService.from_body(body), SETTINGS)
    assert applied(writes(api)) == [(o["kind"], o["metadata"]["name"]) for o in wanted]
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert (kind, "iris") in applied(writes(api))
        assert (kind, "iris-model") in applied(writes(api))
    status = api.objects[ISVC, NAMESPACE, "iris"]["status"]
    # Both autoscaled: no replicas in either Deployment (the fake API server defaults none).
    assert status["replicaSummary"] == "0/1 front, 0/1 model"
    assert status["selector"].endswith("app.kubernetes.io/component=model")

    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert writes(api, since) == []
    assert {r.method.value for r in requests(api, since)} == {"GET"}


async def test_ready_flows_from_both_tiers(api: Any, reconciler: Reconciler) -> None:
    store(api, isvc_body(cache=EXTERNAL, front={"enabled": True, "minReplicas": 2}))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    set_status(api, reconciler, "iris", READY)  # the front is ready, the model tier is not
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    found = conditions(api)
    assert found["ServingReady"][:2] == ("False", "RolloutInProgress")
    assert found["ServingReady"][2].startswith("model tier: ")
    assert found["ModelReady"] == (
        "False", "ModelLoading", "model tier: no pod has loaded the model yet"
    )  # fmt: skip
    assert found["Ready"][0] == "False"

    set_status(
        api,
        reconciler,
        "iris-model",
        READY | {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    )
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    found = conditions(api)
    assert found["ServingReady"] == (
        "True", "ReplicasReady", "front: 2/2 replicas ready; model tier: 1/1 replicas ready"
    )  # fmt: skip
    assert found["ModelReady"] == ("True", "ModelLoaded", "model tier: loaded by 1/1 pods")
    assert found["Ready"] == (
        "True", "Ready", "2/2 front, 1/1 model replicas ready at http://iris.ml.svc/"
    )  # fmt: skip
    assert api.objects[ISVC, NAMESPACE, "iris"]["status"]["readyReplicas"] == 1

    set_status(api, reconciler, "iris", {"readyReplicas": 1})  # a front pod goes
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    found = conditions(api)
    assert found["ServingReady"][:2] == ("False", "PodsNotReady")
    assert found["ServingReady"][2].startswith("front: 1/2 replicas ready")


async def test_switching_the_split_off_prunes_the_model_tier(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(**SPLIT))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    store(api, isvc_body(generation=2, cache=EXTERNAL, minReplicas=1, maxReplicas=3))
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    deletes = [r for r in writes(api, since) if r.method.value == "DELETE"]
    assert sorted(str(r.url.path) for r in deletes) == sorted(
        path(api_version, kind, "iris-model") for api_version, kind in TIERED
    )
    assert all(r.data["preconditions"]["uid"] for r in deletes)
    # NAME is the one tier again (the same selector: a rolling update, not a re-create).
    assert ("Deployment", "iris") in applied(writes(api, since))
    live = api.objects[key("apps/v1", "Deployment"), NAMESPACE, "iris"]
    env = {e["name"] for e in live["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "MEMOSERVE_UPSTREAM_URL" not in env
    assert "MEMOSERVE_MODEL_URI" in env

    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert writes(api, since) == []


async def test_switching_the_split_on_keeps_the_serving_selector(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(cache=EXTERNAL))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    before = api.objects[key("apps/v1", "Deployment"), NAMESPACE, "iris"]["spec"]["selector"]
    store(api, isvc_body(generation=2, **SPLIT))
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert [r for r in writes(api, since) if r.method.value == "DELETE"] == []
    after = api.objects[key("apps/v1", "Deployment"), NAMESPACE, "iris"]["spec"]["selector"]
    assert after == before  # immutable: the front keeps it
    model = api.objects[key("apps/v1", "Deployment"), NAMESPACE, "iris-model"]
    assert model["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "model"
