"""One reconcile against a fake API server speaking real HTTP: the exact requests it makes.

The reconciler runs without kopf here (test_handlers.py runs it under kopf): each test stores an
InferenceService, reconciles, and asserts on the recorded requests and the stored objects.

Why the fake suffices: these tests check what the reconcile decides (which objects it applies
and with which body, which it deletes and with which uid precondition, the status it writes),
and that is in the requests. The fake's apply is a merge patch, so what an apply does to the live
object is proven at the real API server instead: a field the operator stops rendering removed and
someone else's kept, switching autoscaling on without a drop to 1 replica
(tests/e2e/test_apply_semantics.py); hand edits undone, a deleted child recreated, the HPA's
replicas kept (tests/e2e/test_drift.py); a switched-off feature's children pruned
(tests/e2e/test_apply_semantics.py, test_front.py).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import Configuration

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders import build_all
from memoserve_operator.builders.grpc_tls import TlsMaterial
from memoserve_operator.builders.meta import MANAGED_BY
from memoserve_operator.children.compare import stamp
from memoserve_operator.grpc_tls.certificate import RENEW_BEFORE, VALIDITY, still_good
from memoserve_operator.kube.client import KubeClient
from memoserve_operator.metrics import Metrics
from memoserve_operator.preflight import ModelPreflight
from memoserve_operator.reconcile import Reconciler
from memoserve_operator.settings import OperatorSettings
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
    summary,
    writes,
)
from tests.operator.helpers import SETTINGS
from tests.operator.test_argocd_health import HEALTH_LUA, HealthCheck
from tests.support.gcs import BUCKET, GcsEmulator

pytestmark = pytest.mark.kmock(cls=FakeKube)

DEPLOYMENT = ("apps/v1", "Deployment")
EXTERNAL = {"external": {"host": "redis.example.com"}}
INGRESS = {"enabled": True, "host": "iris.example.com", "managedCertificate": True}
T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def api(kmock: Any) -> Any:
    declare_resources(kmock)
    return kmock


@pytest.fixture
async def reconciler(api: Any) -> AsyncIterator[Reconciler]:
    kube = await KubeClient.open(Configuration(host=str(api.url)))
    yield Reconciler(kube, SETTINGS, Metrics(), clock=Clock())
    await kube.close()


def store(api: Any, body: dict[str, Any]) -> None:
    api.objects[ISVC, NAMESPACE, body["metadata"]["name"]] = body


def edit(api: Any, resource: str, name: str, changes: dict[str, Any]) -> None:
    """Someone else changes a stored object (no watch event needed without kopf)."""
    api.objects[resource, NAMESPACE, name].patch(changes)


def status(api: Any) -> dict[str, Any]:
    return dict(api.objects[ISVC, NAMESPACE, "iris"]["status"])


def condition(api: Any, type_: str) -> dict[str, Any]:
    return next(c for c in status(api)["conditions"] if c["type"] == type_)


def desired(body: dict[str, Any], settings: OperatorSettings = SETTINGS) -> list[dict[str, Any]]:
    return [stamp(o) for o in build_all(InferenceService.from_body(body), settings)]


def applied_kinds(calls: list[Any]) -> list[str]:
    return [r.data["kind"] for r in calls if r.headers.get("Content-Type") == APPLY]


async def test_first_reconcile_applies_each_object_once_then_writes_status(
    api: Any, reconciler: Reconciler
) -> None:
    body = isvc_body(cache=EXTERNAL)
    store(api, body)
    outcome = await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    wanted = desired(body)
    assert summary(writes(api)) == [
        *(
            ("PATCH", path(o["apiVersion"], o["kind"], o["metadata"]["name"]) + " apply")
            for o in wanted
        ),
        (
            "PATCH",
            path("serving.memoserve.dev/v1alpha1", "InferenceService", "iris", "status") + " merge",
        ),
    ]
    applies = writes(api)[:-1]
    assert [r.data for r in applies] == wanted  # exactly what the builders say, plus the digest
    assert {(r.params["fieldManager"], r.params["force"]) for r in applies} == {
        ("memoserve-operator", "true")
    }
    assert outcome.result == "waiting"
    assert outcome.retry_after is None
    written = writes(api)[-1].data["status"]
    assert written["observedGeneration"] == 1
    assert written["cache"] == {
        "source": "external", "engine": "redis", "name": None, "host": "redis.example.com",
        "port": 6379, "shards": None, "replicasPerShard": None, "state": "EXTERNAL",
        "summary": "EXTERNAL redis redis.example.com:6379", "operation": None, "message": None,
        "hitRatio": None,
    }  # fmt: skip
    assert [(c["type"], c["status"], c["reason"]) for c in written["conditions"]] == [
        ("Ready", "False", "RolloutInProgress"),
        ("ServingReady", "False", "RolloutInProgress"),
        ("ModelReady", "False", "ModelLoading"),
        ("CacheReady", "True", "ExternalRedis"),
    ]
    assert written["url"] == "http://iris.ml.svc/"
    assert written["replicaSummary"] == "0/1"


async def test_second_reconcile_with_nothing_changed_writes_nothing(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(cache=EXTERNAL, ingress=INGRESS, minReplicas=1, maxReplicas=3))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert writes(api, since) == []
    assert {r.method.value for r in requests(api, since)} == {"GET"}


async def test_spec_change_reapplies_what_changed_with_the_new_content(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(cache=EXTERNAL))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    changed = isvc_body(generation=2, cache=EXTERNAL)
    changed["spec"]["model"]["uri"] = "gs://my-models/iris-v2/"
    store(api, changed)
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert applied_kinds(writes(api, since)) == ["Deployment"]
    deployment = writes(api, since)[0].data
    assert deployment == next(o for o in desired(changed) if o["kind"] == "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MEMOSERVE_MODEL_URI"] == "gs://my-models/iris-v2/"
    assert writes(api, since)[-1].data["status"]["observedGeneration"] == 2


async def test_deleted_or_edited_child_is_restored(api: Any, reconciler: Reconciler) -> None:
    store(api, isvc_body(cache=EXTERNAL))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    api.objects[key("v1", "Service"), NAMESPACE, "iris"].delete()
    edit(
        api, key(*DEPLOYMENT), "iris", {"spec": {"template": {"spec": {"serviceAccountName": "x"}}}}
    )
    edit(api, key("v1", "Secret"), "iris-redis", {"metadata": {"labels": {"team": "ml"}}})
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    # A label someone added is not ours to remove: the Secret is left alone.
    assert applied_kinds(writes(api, since)) == ["Deployment", "Service"]
    assert len(writes(api, since)) == 2  # status unchanged
    service = api.objects[key("v1", "Service"), NAMESPACE, "iris"]
    assert service["spec"]["ports"][0]["port"] == 80


async def test_autoscaled_deployment_leaves_replicas_to_the_hpa(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(replicas=2))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert api.objects[key(*DEPLOYMENT), NAMESPACE, "iris"]["spec"]["replicas"] == 2
    store(api, isvc_body(generation=2, minReplicas=2, maxReplicas=6))
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    # The digest changed, so the Deployment is applied again, now without replicas.
    assert applied_kinds(writes(api, since)) == ["Deployment", "HorizontalPodAutoscaler"]
    assert "replicas" not in writes(api, since)[0].data["spec"]
    # The fake keeps the old 2 (a merge); the API server would reset it to 1 but for the
    # handover (children/handover.py, tests/e2e/test_apply_semantics.py).
    edit(api, key(*DEPLOYMENT), "iris", {"spec": {"replicas": 5}})  # the HPA scales
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert applied_kinds(writes(api, since)) == []
    assert status(api)["replicaSummary"] == "0/5"


async def test_status_follows_the_deployment_and_the_load_balancer(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(cache=EXTERNAL, ingress=INGRESS, minReplicas=1, maxReplicas=3))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert condition(api, "Ready")["status"] == "False"
    ready = {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    edit(api, key(*DEPLOYMENT), "iris", {"spec": {"replicas": 2}, "status": ready})
    edit(
        api,
        key("networking.k8s.io/v1", "Ingress"),
        "iris",
        {"status": {"loadBalancer": {"ingress": [{"ip": "34.1.2.3"}]}}},
    )
    edit(
        api,
        key("networking.gke.io/v1", "ManagedCertificate"),
        "iris",
        {"status": {"certificateStatus": "Active"}},
    )
    hpa_conditions = [
        {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
    ]
    hpa = key("autoscaling/v2", "HorizontalPodAutoscaler")
    edit(api, hpa, "iris", {"status": {"currentReplicas": 2, "conditions": hpa_conditions}})
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert status(api)["url"] == "https://iris.example.com/"
    assert (status(api)["replicas"], status(api)["readyReplicas"]) == (2, 2)
    assert [(c["type"], c["status"]) for c in status(api)["conditions"]] == [
        ("Ready", "True"),
        ("ServingReady", "True"),
        ("ModelReady", "True"),
        ("CacheReady", "True"),
        ("IngressReady", "True"),
        ("AutoscalingReady", "True"),
    ]
    assert condition(api, "Ready")["message"] == "2/2 replicas ready at https://iris.example.com/"
    assert (
        HealthCheck(HEALTH_LUA.read_text())(dict(api.objects[ISVC, NAMESPACE, "iris"]))["status"]
        == "Healthy"
    )


async def test_url_without_host_is_the_load_balancer_address(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(ingress={"enabled": True}))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert status(api).get("url") is None  # no address yet
    assert condition(api, "IngressReady")["reason"] == "AddressPending"
    edit(
        api,
        key("networking.k8s.io/v1", "Ingress"),
        "iris",
        {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}}},
    )
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert status(api)["url"] == "http://10.0.0.7/"


async def test_transition_times_change_only_with_the_status(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(cache=EXTERNAL))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    first = {c["type"]: c["lastTransitionTime"] for c in status(api)["conditions"]}
    assert set(first.values()) == {"2025-01-01T00:00:00Z"}
    clock = reconciler._clock
    assert isinstance(clock, Clock)
    clock.now = T0 + datetime.timedelta(minutes=1)
    edit(api, key(*DEPLOYMENT), "iris", {"status": {"replicas": 1, "updatedReplicas": 1}})
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert condition(api, "ServingReady")["reason"] == "PodsNotReady"  # new reason, same status
    clock.now = T0 + datetime.timedelta(minutes=2)
    edit(api, key(*DEPLOYMENT), "iris", {"status": {"readyReplicas": 1}})
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    second = {c["type"]: c["lastTransitionTime"] for c in status(api)["conditions"]}
    assert second == first | {
        "Ready": "2025-01-01T00:02:00Z",
        "ServingReady": "2025-01-01T00:02:00Z",
        "ModelReady": "2025-01-01T00:02:00Z",  # a ready pod has loaded the model
    }


async def test_invalid_spec_is_reported_once_and_nothing_else_is_touched(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(minReplicas=0))  # the CRD says minimum 1; say a webhook let it through
    outcome = await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert (outcome.result, outcome.retry_after) == ("invalid", None)
    assert summary(requests(api)) == [
        ("GET", path("serving.memoserve.dev/v1alpha1", "InferenceService", "iris")),
        (
            "PATCH",
            path("serving.memoserve.dev/v1alpha1", "InferenceService", "iris", "status") + " merge",
        ),
    ]
    ready = condition(api, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.minReplicas" in ready["message"]
    assert status(api)["observedGeneration"] == 1
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert writes(api, since) == []
    assert (
        HealthCheck(HEALTH_LUA.read_text())(dict(api.objects[ISVC, NAMESPACE, "iris"]))["status"]
        == "Degraded"
    )


async def test_switched_off_features_are_pruned(api: Any, reconciler: Reconciler) -> None:
    store(api, isvc_body(cache=EXTERNAL, ingress=INGRESS, minReplicas=1, maxReplicas=3))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    # Someone else's Ingress with our labels but no owner reference of ours is never deleted.
    labels = {"app.kubernetes.io/instance": "iris", "app.kubernetes.io/managed-by": MANAGED_BY}
    meta = {"name": "other", "namespace": NAMESPACE, "uid": "u-other", "labels": labels}
    foreign = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta}
    api.objects[key("networking.k8s.io/v1", "Ingress"), NAMESPACE, "other"] = foreign
    store(api, isvc_body(generation=2))
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    deletes = [r for r in writes(api, since) if r.method.value == "DELETE"]
    assert sorted(str(r.url.path) for r in deletes) == sorted(
        [
            path("v1", "Secret", "iris-redis"),
            path("autoscaling/v2", "HorizontalPodAutoscaler", "iris"),
            path("cloud.google.com/v1", "BackendConfig", "iris"),
            path("networking.gke.io/v1", "ManagedCertificate", "iris"),
            path("networking.k8s.io/v1", "Ingress", "iris"),
        ]
    )
    assert all(r.data["preconditions"]["uid"] for r in deletes)
    # No cache, no NEG; the NetworkPolicy neither lets the load balancer in nor out to Redis.
    assert applied_kinds(writes(api, since)) == ["Deployment", "Service", "NetworkPolicy"]
    assert not api.objects[key("networking.k8s.io/v1", "Ingress"), NAMESPACE, "other"].deleted
    # The Secret is read by name: the operator may not list Secrets.
    secret_calls = [r for r in requests(api) if "/secrets" in str(r.url.path)]
    assert {r.name for r in secret_calls} == {"iris-redis", "iris-grpc-tls"}


async def test_memorystore_without_a_client_holds_the_deployment_back(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(cache=EXTERNAL))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    store(api, isvc_body(generation=2, cache={"memorystore": {"tier": "BASIC"}}))
    since = mark(api)
    outcome = await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert outcome.retry_after is None  # waiting will not help (tests/memorystore/: with one)
    # Neither the Deployment (it would read a Secret that does not exist yet) nor the Secret
    # (the pods that run read it) is touched; the rest goes on.
    # Only the NetworkPolicy (no Redis to let the pods reach yet) and the status.
    assert applied_kinds(writes(api, since)) == ["NetworkPolicy"]
    assert [r.method.value for r in writes(api, since)] == ["PATCH", "PATCH"]
    cache = condition(api, "CacheReady")
    assert (cache["status"], cache["reason"]) == ("False", "CacheConfigError")
    assert status(api)["cache"] == {
        "source": "memorystore",
        "engine": "redis",
        "state": "ERROR",
        "summary": "ERROR redis",
    }
    assert not api.objects[key("v1", "Secret"), NAMESPACE, "iris-redis"].deleted
    health = HealthCheck(HEALTH_LUA.read_text())(dict(api.objects[ISVC, NAMESPACE, "iris"]))
    assert health["status"] == "Degraded"
    assert "CacheConfigError" in health["message"]


async def test_new_memorystore_service_gets_no_deployment(api: Any, reconciler: Reconciler) -> None:
    store(api, isvc_body(cache={"existingMemorystore": {"name": "shared"}}))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert applied_kinds(writes(api)) == [
        "ServiceAccount",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ]
    serving = condition(api, "ServingReady")
    assert (serving["status"], serving["reason"]) == ("False", "WaitingForCache")
    assert status(api)["cache"]["source"] == "existingMemorystore"


async def test_refused_apply_is_a_failure_of_its_part(api: Any, reconciler: Reconciler) -> None:
    api.refuse("PATCH", "ingresses", 403, 'ingresses.networking.k8s.io "iris" is forbidden')
    store(api, isvc_body(ingress={"enabled": True}))
    outcome = await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert (outcome.result, outcome.retry_after) == ("apply_failed", None)  # the timer retries
    assert outcome.message.startswith("patch ingresses.networking.k8s.io ml/iris: ")
    assert applied_kinds(writes(api)) == [
        *("ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"),
        *("BackendConfig", "Ingress", "NetworkPolicy"),
    ]
    ingress = condition(api, "IngressReady")
    assert (ingress["status"], ingress["reason"]) == ("False", "ApplyFailed")
    assert ingress["message"].startswith("patch ingresses.networking.k8s.io ml/iris: ")
    assert ingress["message"].endswith("(HTTP 403)")


async def test_object_of_someone_else_is_not_taken_over(api: Any, reconciler: Reconciler) -> None:
    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "iris", "namespace": NAMESPACE, "uid": "u-1"},
    }
    api.objects[key("v1", "Service"), NAMESPACE, "iris"] = theirs
    store(api, isvc_body())
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert "Service" not in applied_kinds(writes(api))
    serving = condition(api, "ServingReady")
    assert serving["reason"] == "ApplyFailed"
    assert "not controlled by this" in serving["message"]


async def test_crash_loop_is_a_failure_in_the_pods_words(api: Any, reconciler: Reconciler) -> None:
    store(api, isvc_body())
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    edit(api, key(*DEPLOYMENT), "iris", {"status": {"replicas": 1, "updatedReplicas": 1}})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "iris-abc", "namespace": NAMESPACE, "labels": {
            "app.kubernetes.io/name": "memoserve", "app.kubernetes.io/instance": "iris",
            "app.kubernetes.io/component": "serving",
        }}, "status": {"containerStatuses": [{"name": "server", "state": {"waiting": {
            "reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                         "message": "cannot read gs://my-models/iris/: 403"}}}]},
    }  # fmt: skip
    api.objects[key("v1", "Pod"), NAMESPACE, "iris-abc"] = pod
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    ready = condition(api, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "CrashLoopBackOff")
    assert "cannot read gs://my-models/iris/: 403" in ready["message"]
    assert (
        HealthCheck(HEALTH_LUA.read_text())(dict(api.objects[ISVC, NAMESPACE, "iris"]))["status"]
        == "Degraded"
    )


async def test_deleted_service_is_left_alone(api: Any, reconciler: Reconciler) -> None:
    outcome = await reconciler.reconcile(NAMESPACE, "gone", trigger="test")
    assert outcome.result == "gone"
    assert writes(api) == []


@pytest.mark.looptime
async def test_resync_is_due_by_the_clock_of_the_last_check(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body())
    body = dict(api.objects[ISVC, NAMESPACE, "iris"])
    assert reconciler.due(NAMESPACE, "iris", body)  # never checked
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    body = dict(api.objects[ISVC, NAMESPACE, "iris"])  # not Ready: rechecked every 30 s
    assert not reconciler.due(NAMESPACE, "iris", body)
    await asyncio.sleep(SETTINGS.recheck_seconds)
    assert reconciler.due(NAMESPACE, "iris", body)
    settled = body | {
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    }
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    await asyncio.sleep(SETTINGS.recheck_seconds)
    assert not reconciler.due(NAMESPACE, "iris", settled)  # Ready: every 5 minutes
    await asyncio.sleep(SETTINGS.resync_seconds)
    assert reconciler.due(NAMESPACE, "iris", settled)


@pytest.fixture
async def checking(api: Any, gcs_emulator: GcsEmulator) -> AsyncIterator[Reconciler]:
    """A reconciler with the model preflight on, against the Cloud Storage emulator."""
    gcs_emulator.wipe()
    settings = SETTINGS.model_copy(
        update={"model_preflight": True, "storage_endpoint": gcs_emulator.url}
    )
    kube = await KubeClient.open(Configuration(host=str(api.url)))
    yield Reconciler(kube, settings, Metrics(), clock=Clock(), preflight=ModelPreflight(settings))
    await kube.close()


async def test_a_model_the_preflight_cannot_find_gets_no_pods(
    api: Any, checking: Reconciler, gcs_emulator: GcsEmulator
) -> None:
    body = isvc_body(cache=EXTERNAL)
    body["spec"]["model"]["uri"] = f"gs://{BUCKET}/iris/"
    store(api, body)
    await checking.reconcile(NAMESPACE, "iris", trigger="test")
    assert "Deployment" not in applied_kinds(writes(api))
    model = condition(api, "ModelReady")
    assert (model["status"], model["reason"]) == ("False", "ModelPreflightFailed")
    assert model["message"] == (
        f"gs://{BUCKET}/iris/: no such object, and no objects under gs://{BUCKET}/iris/"
    )
    ready = condition(api, "Ready")
    assert (ready["reason"], ready["message"]) == (
        "ModelPreflightFailed",
        "ServingReady: waits for the model",
    )
    health = HealthCheck(HEALTH_LUA.read_text())(dict(api.objects[ISVC, NAMESPACE, "iris"]))
    assert health["status"] == "Degraded"


async def test_a_found_model_rolls_out_and_a_bad_new_uri_keeps_the_old_pods(
    api: Any, checking: Reconciler, gcs_emulator: GcsEmulator
) -> None:
    gcs_emulator.bucket().blob("iris/model.joblib").upload_from_string(b"model")
    body = isvc_body(cache=EXTERNAL)
    body["spec"]["model"]["uri"] = f"gs://{BUCKET}/iris/"
    store(api, body)
    await checking.reconcile(NAMESPACE, "iris", trigger="test")
    assert "Deployment" in applied_kinds(writes(api))
    assert condition(api, "ModelReady")["reason"] == "ModelLoading"  # the pods' turn
    template = api.objects[key(*DEPLOYMENT), NAMESPACE, "iris"]["spec"]["template"]

    body = isvc_body(generation=2, cache=EXTERNAL)
    body["spec"]["model"]["uri"] = f"gs://{BUCKET}/iris-v2/"  # a typo'd upload
    store(api, body)
    since = mark(api)
    await checking.reconcile(NAMESPACE, "iris", trigger="test")
    assert "Deployment" not in applied_kinds(writes(api, since))
    live = api.objects[key(*DEPLOYMENT), NAMESPACE, "iris"]
    assert not live.deleted  # not pruned: it serves the model it loaded
    assert live["spec"]["template"] == template
    model = condition(api, "ModelReady")
    assert (model["reason"], model["message"]) == (
        "ModelPreflightFailed",
        f"gs://{BUCKET}/iris-v2/: no such object, and no objects under gs://{BUCKET}/iris-v2/",
    )


GRPC_OVER_LB = {"grpc": {"enabled": True}, "ingress": {"enabled": True}}


def tls_secret(api: Any) -> dict[str, Any]:
    return dict(api.objects[key("v1", "Secret"), NAMESPACE, "iris-grpc-tls"])


def checksum(api: Any) -> str:
    template = api.objects[key(*DEPLOYMENT), NAMESPACE, "iris"]["spec"]["template"]
    return str(template["metadata"]["annotations"]["serving.memoserve.dev/config-checksum"])


async def test_grpc_through_the_load_balancer_gets_a_kept_certificate(api: Any) -> None:
    kube = await KubeClient.open(Configuration(host=str(api.url)))
    clock = Clock()
    try:
        store(api, isvc_body(**GRPC_OVER_LB))
        first = Reconciler(kube, SETTINGS, Metrics(), clock=clock)
        await first.reconcile(NAMESPACE, "iris", trigger="test")
        secret = tls_secret(api)
        assert secret["type"] == "kubernetes.io/tls"
        material = TlsMaterial(
            base64.b64decode(secret["data"]["tls.crt"]).decode(),
            base64.b64decode(secret["data"]["tls.key"]).decode(),
        )
        assert still_good(material, NAMESPACE, "iris", T0)
        rolled = checksum(api)

        # Nothing changed: no write, from this reconciler or from a restarted operator's
        # (which reads the key back from the Secret instead of making a new one).
        since = mark(api)
        await first.reconcile(NAMESPACE, "iris", trigger="test")
        await Reconciler(kube, SETTINGS, Metrics(), clock=clock).reconcile(
            NAMESPACE, "iris", trigger="test"
        )
        assert writes(api, since) == []

        # 30 days before it expires, a new certificate, and the pods roll to read it.
        clock.now = T0 + VALIDITY - RENEW_BEFORE
        since = mark(api)
        await first.reconcile(NAMESPACE, "iris", trigger="test")
        assert applied_kinds(writes(api, since)) == ["Secret", "Deployment"]
        assert tls_secret(api)["data"] != secret["data"]
        assert checksum(api) != rolled

        # gRPC off: the key goes.
        store(api, isvc_body(generation=2, ingress={"enabled": True}))
        since = mark(api)
        await first.reconcile(NAMESPACE, "iris", trigger="test")
        deletes = [r for r in writes(api, since) if r.method.value == "DELETE"]
        assert [str(r.url.path) for r in deletes] == [path("v1", "Secret", "iris-grpc-tls")]
    finally:
        await kube.close()


async def test_a_cache_secret_stays_when_the_grpc_one_goes(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(cache=EXTERNAL, **GRPC_OVER_LB))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert {"iris-redis", "iris-grpc-tls"} <= {
        name for (resource, _, name) in api.objects if resource == key("v1", "Secret")
    }
    store(api, isvc_body(generation=2, cache=EXTERNAL, grpc={"enabled": True}))  # in-cluster only
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    deletes = [str(r.url.path) for r in writes(api, since) if r.method.value == "DELETE"]
    assert path("v1", "Secret", "iris-grpc-tls") in deletes
    assert path("v1", "Secret", "iris-redis") not in deletes
