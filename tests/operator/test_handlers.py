"""The operator under kopf, against a fake API server speaking real HTTP: the handlers' wiring.

Each test starts the real operator (kopf, memoserve's handlers, the kubeconfig login), creates
or changes objects the way kubectl or a controller would, and asserts on the exact requests.

Why the fake suffices: the wiring (which event runs which handler, kopf's finalizer and its
annotations, retries) is in the requests, and kopf's own writes are JSON and merge patches, which
the fake applies as the API server does. What an apply does to a live object is not asserted
here (see test_reconcile.py for where it is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memoserve_operator.settings import OperatorSettings
from tests.operator.fake_api import (
    APPLY,
    ISVC,
    NAMESPACE,
    FakeKube,
    declare_resources,
    eventually,
    isvc_body,
    key,
    mark,
    path,
    requests,
    running_operator,
    send,
    settle,
    summary,
    writes,
)
from tests.operator.fake_api import (
    ours as is_ours,
)
from tests.operator.helpers import SETTINGS

pytestmark = pytest.mark.kmock(cls=FakeKube)

ISVC_PATH = path("serving.memoserve.dev/v1alpha1", "InferenceService")
EXTERNAL = {"external": {"host": "redis.example.com"}}


@pytest.fixture
def api(kmock: Any) -> Any:
    declare_resources(kmock)
    return kmock


def stored(api: Any, resource: str, name: str = "iris") -> dict[str, Any]:
    return dict(api.objects[resource, NAMESPACE, name])


def ready(api: Any) -> tuple[str, str]:
    status = stored(api, ISVC).get("status") or {}
    found: dict[str, str] = next(
        (c for c in status.get("conditions", []) if c["type"] == "Ready"), {}
    )
    return found.get("status", ""), found.get("reason", "")


def applied(calls: list[Any]) -> list[str]:
    return [r.data["kind"] for r in calls if r.headers.get("Content-Type") == APPLY]


async def test_create_applies_each_child_once_and_then_stays_quiet(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_operator(api, tmp_path, monkeypatch, SETTINGS):
        since = mark(api)
        await send(api, "POST", ISVC_PATH, isvc_body(cache=EXTERNAL), "application/json")
        await settle(api)
    ours = writes(api, since)
    assert applied(ours) == [
        "ServiceAccount",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ]
    assert summary(ours[6:]) == [("PATCH", f"{ISVC_PATH}/iris/status merge")]
    assert len(ours) == 7  # the child events our applies caused made no further write
    # kopf's own bookkeeping: its finalizer (the delete handler needs one) and annotations, never
    # status (the CRD's schema would prune status.kopf and the handler would run forever).
    kopf_patches = [r for r in requests(api, since) if r.method.value == "PATCH" and not is_ours(r)]
    assert {r.headers["Content-Type"] for r in kopf_patches} <= {
        "application/json-patch+json",
        "application/merge-patch+json",
    }
    for request in kopf_patches:
        assert "status" not in (request.data if isinstance(request.data, dict) else {})
    annotations = stored(api, ISVC)["metadata"]["annotations"]
    assert "serving.memoserve.dev/last-handled-configuration" in annotations
    assert stored(api, ISVC)["metadata"]["finalizers"] == ["serving.memoserve.dev/finalizer"]


async def test_spec_change_reapplies_the_deployment(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_operator(api, tmp_path, monkeypatch, SETTINGS):
        await send(api, "POST", ISVC_PATH, isvc_body(), "application/json")
        await settle(api)
        since = mark(api)
        change = {"metadata": {"generation": 2}, "spec": {"model": {"uri": "gs://my-models/v2/"}}}
        await send(api, "PATCH", f"{ISVC_PATH}/iris", change)
        await settle(api)
    assert applied(writes(api, since)) == ["Deployment"]
    assert stored(api, ISVC)["status"]["observedGeneration"] == 2


async def test_children_are_watched_for_drift_and_status(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = isvc_body(ingress={"enabled": True, "host": "iris.example.com"})
    async with running_operator(api, tmp_path, monkeypatch, SETTINGS):
        await send(api, "POST", ISVC_PATH, body, "application/json")
        await settle(api)
        assert ready(api) == ("False", "RolloutInProgress")

        since = mark(api)
        await send(api, "DELETE", path("v1", "Service", "iris"))
        await eventually(lambda: applied(writes(api, since)) == ["Service"])

        deployment_status = {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}
        await send(
            api,
            "PATCH",
            path("apps/v1", "Deployment", "iris", "status"),
            {"status": deployment_status},
        )
        lb = {"loadBalancer": {"ingress": [{"ip": "34.1.2.3"}]}}
        await send(
            api, "PATCH", path("networking.k8s.io/v1", "Ingress", "iris", "status"), {"status": lb}
        )
        await eventually(lambda: ready(api) == ("True", "Ready"))
        await settle(api)
    assert stored(api, ISVC)["status"]["url"] == "http://iris.example.com/"
    assert applied(writes(api, since)) == ["Service"]  # status changes are read, not fought


async def test_invalid_spec_is_reported_without_a_retry_loop(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_operator(api, tmp_path, monkeypatch, SETTINGS):
        since = mark(api)
        bad = isvc_body()
        bad["spec"]["model"]["format"] = "pytorch"
        await send(api, "POST", ISVC_PATH, bad, "application/json")
        await eventually(lambda: ready(api) == ("False", "InvalidSpec"))
        await settle(api)
    assert summary(writes(api, since)) == [("PATCH", f"{ISVC_PATH}/iris/status merge")]
    annotations = stored(api, ISVC)["metadata"]["annotations"]
    assert not any("retries" in value for value in annotations.values())  # handled, done


@pytest.mark.looptime
async def test_resync_repairs_what_no_event_reports(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = OperatorSettings(**SETTINGS.model_dump() | {"resync_seconds": 60})
    async with running_operator(api, tmp_path, monkeypatch, settings):
        await send(api, "POST", ISVC_PATH, isvc_body(cache=EXTERNAL), "application/json")
        await settle(api)
        deployment_status = {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}
        await send(
            api,
            "PATCH",
            path("apps/v1", "Deployment", "iris", "status"),
            {"status": deployment_status},
        )
        # looptime's clock runs ahead while the loop waits on real sockets: a loaded machine
        # needs many of its seconds for one status write.
        await eventually(lambda: ready(api) == ("True", "Ready"), within=60)
        # Secrets are not watched (no list/watch on Secrets): the timer's resync restores it.
        api.objects[key("v1", "Secret"), NAMESPACE, "iris-redis"].delete()
        since = mark(api)
        await eventually(lambda: applied(writes(api, since)) == ["Secret"], within=120)
    assert not api.objects[key("v1", "Secret"), NAMESPACE, "iris-redis"].deleted


async def test_delete_leaves_the_children_to_the_garbage_collector(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_operator(api, tmp_path, monkeypatch, SETTINGS):
        await send(api, "POST", ISVC_PATH, isvc_body(), "application/json")
        await settle(api)
        since = mark(api)
        await send(api, "DELETE", f"{ISVC_PATH}/iris")
        await eventually(lambda: api.objects[ISVC, NAMESPACE, "iris"].deleted)
        await settle(api)
    assert writes(api, since) == []  # kopf released its finalizer; nothing else was written
