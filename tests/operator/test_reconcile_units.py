"""The pure parts of a reconcile: compare, observe (verdicts from children), the cache step and
the status patch. Table-driven; no API server."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from memoserve_contract.resource.status import CacheStatus, InferenceServiceStatus
from memoserve_operator.cache.step import resolve_cache
from memoserve_operator.cache.verdicts import CONFIG_ERROR
from memoserve_operator.children.compare import (
    DIGEST_ANNOTATION,
    contains,
    digest,
    needs_apply,
    stamp,
)
from memoserve_operator.children.sync import controlled_by, owner_of
from memoserve_operator.status.observe import (
    autoscaling_verdict,
    ingress_verdict,
    model_verdict,
    serving_verdict,
    url,
)
from memoserve_operator.status.report import status_patch
from tests.operator.helpers import SETTINGS, make_isvc

NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("live", "want", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),  # fields others add are ignored
        ({"a": 1}, {"a": 2}, False),  # a hand edit
        ({}, {"a": 1}, False),  # a field removed by hand
        ({"a": {"x": 1, "y": 2}}, {"a": {"x": 1}}, True),
        ({}, {"annotations": {}}, True),  # the API server drops empty maps
        ({"l": [1, 2]}, {"l": [1, 2]}, True),
        ({"l": [1, 2, 3]}, {"l": [1, 2]}, False),  # plain lists are atomic
        ({"l": [{"a": 1, "b": 0}]}, {"l": [{"a": 1}]}, True),  # defaults inside list items
        # Lists keyed by name: entries others add (a webhook's sidecar) are not drift.
        (
            {"c": [{"name": "server", "image": "i"}, {"name": "sidecar"}]},
            {"c": [{"name": "server", "image": "i"}]},
            True,
        ),
        ({"c": [{"name": "sidecar"}]}, {"c": [{"name": "server"}]}, False),
        ({"requests": {"memory": "2Gi"}}, {"requests": {"memory": "2048Mi"}}, True),
        ({"limits": {"nvidia.com/gpu": "1"}}, {"limits": {"nvidia.com/gpu": 1}}, True),
        ({"requests": {"cpu": "1"}}, {"requests": {"cpu": "1500m"}}, False),
        ({"value": "1"}, {"value": "1.0"}, False),  # quantities only where Kubernetes has them
    ],
)
def test_contains(live: dict[str, Any], want: dict[str, Any], expected: bool) -> None:
    assert contains(live, want) is expected


def test_digest_stamps_what_was_built() -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"x": 1}}
    stamped = stamp(obj)
    assert stamped["metadata"]["annotations"] == {DIGEST_ANNOTATION: digest(obj)}
    assert "annotations" not in obj["metadata"]  # the builders' object is not changed
    assert digest(stamped) == digest(obj)
    assert digest({**obj, "spec": {"x": 2}}) != digest(obj)
    live = {**stamped, "status": {"ready": True}}
    assert not needs_apply(stamped, live)
    assert needs_apply(stamp({**obj, "spec": {}}), live)  # a field no longer set: new digest
    assert needs_apply(stamped, None)


def test_owner_references() -> None:
    ref = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "name": "iris",
        "uid": "u1",
        "controller": True,
    }
    child = {
        "metadata": {
            "namespace": "ml",
            "ownerReferences": [{**ref, "controller": False, "uid": "u0"}, ref],
        }
    }
    assert owner_of(child) == ("ml", "iris")
    assert controlled_by(child, "u1")
    assert not controlled_by(child, "u0")  # an owner, not the controller
    assert owner_of({"metadata": {"ownerReferences": [{**ref, "kind": "Other"}]}}) is None


def deployment(replicas: int = 2, generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": status,
    }


def waiting(reason: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "status": {
            "containerStatuses": [{"name": "server", "state": {"waiting": {"reason": reason}}}]
        },
    }


UNSCHEDULABLE = {
    "metadata": {"name": "p"},
    "status": {
        "conditions": [
            {"type": "PodScheduled", "status": "False", "message": "0/3 nodes have nvidia-l4"}
        ]
    },
}
READY = {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "observedGeneration": 1}


@pytest.mark.parametrize(
    ("live", "pods", "reason", "in_message"),
    [
        (None, [], "DeploymentPending", ""),
        (deployment(**READY), [], "ReplicasReady", "2/2"),
        (deployment(generation=2, **READY), [], "RolloutInProgress", "catching up"),
        (deployment(replicas=0), [], "ScaledToZero", ""),
        (
            deployment(replicas=2, updatedReplicas=1, readyReplicas=2),
            [],
            "RolloutInProgress",
            "1/2",
        ),
        (deployment(updatedReplicas=2, readyReplicas=1), [], "PodsNotReady", "1/2"),
        (deployment(updatedReplicas=2), [UNSCHEDULABLE], "PodsNotReady", "nvidia-l4"),
        (deployment(updatedReplicas=2), [waiting("CrashLoopBackOff")], "CrashLoopBackOff", "pod p"),
        (deployment(updatedReplicas=2), [waiting("ImagePullBackOff")], "ImagePullBackOff", ""),
        (deployment(updatedReplicas=2), [waiting("ContainerCreating")], "PodsNotReady", ""),
        (
            deployment(
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "too slow",
                    }
                ]
            ),
            [],
            "RolloutFailed",
            "too slow",
        ),
        (
            deployment(
                conditions=[
                    {
                        "type": "ReplicaFailure",
                        "status": "True",
                        "reason": "FailedCreate",
                        "message": "quota",
                    }
                ]
            ),
            [],
            "PodCreationFailed",
            "quota",
        ),
    ],
)
def test_serving_verdict(
    live: dict[str, Any] | None, pods: list[dict[str, Any]], reason: str, in_message: str
) -> None:
    verdict = serving_verdict(live, pods)
    assert verdict.reason == reason
    assert verdict.ok is (reason == "ReplicasReady")
    assert in_message in verdict.message


LB = {"status": {"loadBalancer": {"ingress": [{"ip": "34.1.2.3"}]}}}


@pytest.mark.parametrize(
    ("ingress", "certificate", "wants", "reason"),
    [
        (None, None, False, "IngressPending"),
        ({}, None, False, "AddressPending"),
        (LB, None, False, "AddressAssigned"),
        (LB, None, True, "CertificateProvisioning"),
        (LB, {"status": {"certificateStatus": "Provisioning"}}, True, "CertificateProvisioning"),
        (
            LB,
            {
                "status": {
                    "certificateStatus": "FailedNotVisible",
                    "domainStatus": [{"domain": "a.b", "status": "FailedNotVisible"}],
                }
            },
            True,
            "CertificateFailed",
        ),
        (LB, {"status": {"certificateStatus": "Active"}}, True, "AddressAssigned"),
    ],
)
def test_ingress_verdict(ingress: Any, certificate: Any, wants: bool, reason: str) -> None:
    assert ingress_verdict(ingress, certificate, wants).reason == reason


def hpa(
    able: str = "True", able_reason: str = "ReadyForNewScale", active: str = "True", since: int = 0
) -> dict[str, Any]:
    changed = (NOW - datetime.timedelta(seconds=since)).isoformat()
    conditions = [
        {"type": "AbleToScale", "status": able, "reason": able_reason},
        {"type": "ScalingActive", "status": active, "reason": "FailedGetPodsMetric"},
    ]
    conditions[1]["lastTransitionTime"] = changed
    return {
        "spec": {"minReplicas": 1, "maxReplicas": 4},
        "status": {"currentReplicas": 2, "conditions": conditions},
    }


@pytest.mark.parametrize(
    ("live", "serving_ready", "reason"),
    [
        (None, True, "AutoscalerPending"),
        ({"status": {}}, True, "AutoscalerPending"),
        (hpa(), True, "ScalingActive"),
        (hpa(able="False", able_reason="FailedGetScale"), True, "ScalingError"),
        (hpa(able="False", able_reason="BackoffBoth"), True, "ScalingActive"),  # just scaled
        (hpa(active="False", since=3600), False, "MetricsPending"),  # no ready pods, no metrics
        (hpa(active="False", since=60), True, "MetricsPending"),  # metrics-server is slow
        (hpa(active="False", since=600), True, "MetricsError"),  # no adapter for the metric
    ],
)
def test_autoscaling_verdict(live: Any, serving_ready: bool, reason: str) -> None:
    assert autoscaling_verdict(live, serving_ready=serving_ready, now=NOW).reason == reason


@pytest.mark.parametrize(
    ("ingress", "expected"),
    [
        (None, "http://iris.ml.svc/"),
        ({"enabled": True}, None),  # no address yet: no URL
        ({"enabled": True, "path": "/v2"}, "http://34.1.2.3/v2"),
        (
            {"enabled": True, "host": "iris.example.com", "managedCertificate": True},
            "https://iris.example.com/",
        ),
        (
            {"enabled": True, "host": "iris.example.com", "managedCertificateName": "shared"},
            "https://iris.example.com/",
        ),
    ],
)
def test_url(ingress: dict[str, Any] | None, expected: str | None) -> None:
    spec = {"ingress": ingress} if ingress else {}
    live = LB if ingress and len(ingress) > 1 else None
    assert url(make_isvc(**spec), live) == expected


@pytest.mark.parametrize(
    ("cache", "ok", "reason", "state", "hold", "has_endpoint"),
    [
        (None, True, "CacheOff", "OFF", False, False),
        ({"enabled": False, "external": {"host": "r"}}, True, "CacheOff", "OFF", False, False),
        ({"external": {"host": "r", "tls": True}}, True, "ExternalRedis", "EXTERNAL", False, True),
        # Without a Memorystore client (tests/memorystore/ runs the lifecycle with one).
        ({"memorystore": {}}, False, CONFIG_ERROR, "ERROR", True, False),
        ({"existingMemorystore": {"name": "shared"}}, False, CONFIG_ERROR, "ERROR", True, False),
    ],
)
async def test_cache_step(
    cache: Any, ok: bool, reason: str, state: str, hold: bool, has_endpoint: bool
) -> None:
    outcome = await resolve_cache(make_isvc(**({"cache": cache} if cache else {})), SETTINGS)
    assert (outcome.verdict.ok, outcome.verdict.reason, outcome.status.state) == (ok, reason, state)
    assert (outcome.hold, outcome.endpoint is not None, outcome.retry_after) == (
        hold,
        has_endpoint,
        None,
    )


def test_cache_step_reason_is_a_failure_for_the_health_check() -> None:
    # health.lua: reasons ending in Failed, Failure, Error or BackOff mean Degraded.
    assert CONFIG_ERROR.endswith(("Failed", "Failure", "Error", "BackOff"))


def test_status_patch_removes_what_is_no_longer_there() -> None:
    patch = status_patch(
        InferenceServiceStatus(observed_generation=2, cache=CacheStatus(state="OFF"))
    )
    assert patch["observedGeneration"] == 2
    assert patch["url"] is None
    assert patch["conditions"] == []
    assert patch["cache"] == {
        "source": None,
        "engine": None,
        "name": None,
        "host": None,
        "port": None,
        "shards": None,
        "replicasPerShard": None,
        "state": "OFF",
        "summary": None,
        "operation": None,
        "message": None,
        "hitRatio": None,
    }


def _pod_with(name: str, container: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"containerStatuses": [container]}}


LOAD_FAILED = {
    "name": "server",
    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
    "lastState": {
        "terminated": {
            "exitCode": 1,
            "message": "cannot load model iris: cannot read gs://b/iris.onnx: 403 Forbidden\n",
        }
    },
}
CRASHED = {
    "name": "server",
    "state": {"terminated": {"exitCode": 137, "message": "Traceback ...\n  MemoryError"}},
}
CLEAN_EXIT = {"name": "server", "state": {"terminated": {"exitCode": 0, "message": "bye"}}}
DEPLOYMENT_NOT_READY = {"spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 0}}
DEPLOYMENT_READY = {"spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 1}}


@pytest.mark.parametrize(
    ("deployment", "pods", "status", "reason", "message"),
    [
        (None, [], "False", "DeploymentPending", "no pods yet"),
        (DEPLOYMENT_NOT_READY, [], "False", "ModelLoading", "no pod has loaded the model yet"),
        (DEPLOYMENT_READY, [], "True", "ModelLoaded", "loaded by 1/2 pods"),
        (
            DEPLOYMENT_NOT_READY,
            [_pod_with("iris-1", CLEAN_EXIT), _pod_with("iris-2", LOAD_FAILED)],
            "False",
            "ModelLoadFailed",
            "pod iris-2: cannot load model iris: cannot read gs://b/iris.onnx: 403 Forbidden",
        ),
        (
            DEPLOYMENT_NOT_READY,
            [_pod_with("iris-1", CRASHED)],
            "False",
            "ServerFailed",
            "pod iris-1: Traceback ... MemoryError",
        ),
        # A ready pod wins: the model loads, whatever another pod went through.
        (DEPLOYMENT_READY, [_pod_with("iris-2", LOAD_FAILED)], "True", "ModelLoaded", None),
    ],
)
def test_model_ready_tells_why_the_model_is_not_loaded(
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    status: str,
    reason: str,
    message: str | None,
) -> None:
    verdict = model_verdict(deployment, pods)
    assert verdict.type == "ModelReady"
    assert (verdict.status, verdict.reason) == (status, reason)
    if message is not None:
        assert verdict.message == message
