"""spec.gateway reconciled against the fake API server: what is applied for each exposure (a
shared Gateway, a Gateway of the service's own), nothing written in steady state, the route's
status in IngressReady and status.url (and in Argo CD health), and the switch from the Ingress
to the Gateway and back pruning what the service no longer needs.

The fake suffices here because these tests look at which requests the reconcile makes (applies,
deletes with their uid preconditions, status patches), never at what a server-side apply does
to the stored object; field removal on the real API server (the Service's NEG annotations going
with the Ingress) is tests/e2e/test_gateway.py's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import Configuration

from memoserve_operator.builders import OWNED_KINDS
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
from tests.operator.test_argocd_health import HEALTH_LUA, HealthCheck

pytestmark = pytest.mark.kmock(cls=FakeKube)

SHARED = {
    "parentRef": {"name": "shared", "namespace": "infra", "sectionName": "https"},
    "hostnames": ["iris.example.com"],
}
OWN = {"gatewayClassName": "gke-l7-global-external-managed", "addressName": "iris-ip"}
INGRESS = {"enabled": True, "host": "iris.example.com", "managedCertificate": True}
ROUTE = key("gateway.networking.k8s.io/v1", "HTTPRoute")
GATEWAY = key("gateway.networking.k8s.io/v1", "Gateway")
READY = {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
GATEWAY_KINDS = ["HealthCheckPolicy", "GCPBackendPolicy", "Gateway", "HTTPRoute"]


@pytest.fixture
def api(kmock: Any) -> Any:
    declare_resources(kmock)
    return kmock


@pytest.fixture(params=["read", "indexed"])
async def reconciler(api: Any, request: Any) -> AsyncIterator[Reconciler]:
    """Without the index every child is read from the API server; with it (as under kopf's
    watches), only what it has not seen yet."""
    kube = await KubeClient.open(Configuration(host=str(api.url)))
    index = None
    if request.param == "indexed":
        index = ChildIndex(frozenset(kind for _, kind in OWNED_KINDS if kind != "Secret"))
    yield Reconciler(kube, SETTINGS, Metrics(), index=index)
    await kube.close()


def store(api: Any, body: dict[str, Any]) -> None:
    api.objects[ISVC, NAMESPACE, body["metadata"]["name"]] = body


def applied(calls: list[Any]) -> list[str]:
    return [r.data["kind"] for r in calls if r.headers.get("Content-Type") == APPLY]


def deleted(calls: list[Any]) -> list[str]:
    return sorted(str(r.url.path) for r in calls if r.method.value == "DELETE")


def edit(api: Any, reconciler: Reconciler, resource: str, changes: dict[str, Any]) -> None:
    """A controller writes a child's status; the watches tell the index (as kopf's would)."""
    stored = api.objects[resource, NAMESPACE, "iris"]
    stored.patch(changes)
    if reconciler.index is not None:
        plain = json.loads(json.dumps(stored, default=dict))
        reconciler.index.observe("MODIFIED", {"kind": plain.get("kind"), **plain})


def status(api: Any) -> dict[str, Any]:
    return dict(api.objects[ISVC, NAMESPACE, "iris"]["status"])


def ingress_ready(api: Any) -> tuple[str, str, str]:
    found = next(c for c in status(api)["conditions"] if c["type"] == "IngressReady")
    return found["status"], found["reason"], found["message"]


def route_status(parent: dict[str, Any], accepted: tuple[str, str], resolved: str) -> Any:
    """What a Gateway controller writes on the route: one entry per parent Gateway."""
    return {
        "status": {
            "parents": [
                {
                    "parentRef": parent,
                    "controllerName": "networking.gke.io/gateway",
                    "conditions": [
                        {"type": "Accepted", "status": accepted[0], "reason": accepted[1],
                         "message": "listener https does not allow routes from namespace ml"},
                        {"type": "ResolvedRefs", "status": resolved, "reason": "ResolvedRefs"},
                    ],
                }
            ]
        }
    }  # fmt: skip


async def test_shared_gateway_gets_route_and_policies_and_no_ingress_kinds(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(gateway=SHARED))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    kinds = applied(writes(api))
    assert [k for k in kinds if k in GATEWAY_KINDS] == ["HealthCheckPolicy", "GCPBackendPolicy",
                                                        "HTTPRoute"]  # fmt: skip
    assert not {"BackendConfig", "ManagedCertificate", "Ingress"} & set(kinds)
    service = api.objects[key("v1", "Service"), NAMESPACE, "iris"]
    assert "cloud.google.com/neg" not in (service["metadata"].get("annotations") or {})
    assert ingress_ready(api)[:2] == ("False", "RoutePending")
    assert status(api).get("url") is None


async def test_route_status_becomes_ingress_ready_url_and_argo_cd_health(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(gateway=SHARED))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    edit(api, reconciler, key("apps/v1", "Deployment"), {"status": READY})
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared",
              "namespace": "infra", "sectionName": "https"}  # fmt: skip
    refused = route_status(parent, ("False", "NotAllowedByListeners"), "True")
    edit(api, reconciler, ROUTE, refused)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    state, reason, message = ingress_ready(api)
    assert (state, reason) == ("False", "RouteAcceptanceFailed")
    assert message == (
        "Gateway infra/shared refused the route: NotAllowedByListeners: "
        "listener https does not allow routes from namespace ml"
    )
    health = HealthCheck(HEALTH_LUA.read_text())(dict(api.objects[ISVC, NAMESPACE, "iris"]))
    assert health == {"status": "Degraded", "message": f"IngressReady: {reason}: {message}"}

    edit(api, reconciler, ROUTE, route_status(parent, ("True", "Accepted"), "False"))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert ingress_ready(api)[:2] == ("False", "RouteRefsFailed")

    edit(api, reconciler, ROUTE, route_status(parent, ("True", "Accepted"), "True"))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert ingress_ready(api) == ("True", "RouteAccepted", "accepted by Gateway infra/shared")
    assert status(api)["url"] == "http://iris.example.com/"
    health = HealthCheck(HEALTH_LUA.read_text())(dict(api.objects[ISVC, NAMESPACE, "iris"]))
    assert health["status"] == "Healthy"


async def test_own_gateway_address_is_the_url_and_steady_state_writes_nothing(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(gateway=OWN))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert [k for k in applied(writes(api)) if k in GATEWAY_KINDS] == GATEWAY_KINDS
    assert ingress_ready(api)[:2] == ("False", "RoutePending")
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "iris"}
    edit(api, reconciler, ROUTE, route_status(parent, ("True", "Accepted"), "True"))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert ingress_ready(api)[:2] == ("False", "AddressPending")
    assert status(api).get("url") is None
    address = {"status": {"addresses": [{"type": "IPAddress", "value": "34.1.2.3"}]}}
    edit(api, reconciler, GATEWAY, address)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert ingress_ready(api) == ("True", "RouteAccepted", "Gateway ml/iris at 34.1.2.3")
    assert status(api)["url"] == "http://34.1.2.3/"

    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert writes(api, since) == []
    assert {r.method.value for r in requests(api, since)} == {"GET"}


async def test_ingress_to_gateway_and_back_prunes_what_is_no_longer_needed(
    api: Any, reconciler: Reconciler
) -> None:
    store(api, isvc_body(ingress=INGRESS))
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")

    store(api, isvc_body(generation=2, gateway=OWN))
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert deleted(writes(api, since)) == sorted(
        [
            path("cloud.google.com/v1", "BackendConfig", "iris"),
            path("networking.gke.io/v1", "ManagedCertificate", "iris"),
            path("networking.k8s.io/v1", "Ingress", "iris"),
        ]
    )
    # The Service loses its NEG and BackendConfig annotations: applied again, without them.
    assert applied(writes(api, since)) == ["Service", *GATEWAY_KINDS]
    service = next(r.data for r in writes(api, since) if r.data.get("kind") == "Service")
    assert set(service["metadata"]["annotations"]) == {"serving.memoserve.dev/applied-digest"}

    store(api, isvc_body(generation=3, ingress=INGRESS))
    since = mark(api)
    await reconciler.reconcile(NAMESPACE, "iris", trigger="test")
    assert deleted(writes(api, since)) == sorted(
        [
            path("networking.gke.io/v1", "HealthCheckPolicy", "iris"),
            path("networking.gke.io/v1", "GCPBackendPolicy", "iris"),
            path("gateway.networking.k8s.io/v1", "Gateway", "iris"),
            path("gateway.networking.k8s.io/v1", "HTTPRoute", "iris"),
        ]
    )
    assert all(
        r.data["preconditions"]["uid"] for r in writes(api, since) if r.method.value == "DELETE"
    )
    assert applied(writes(api, since)) == ["Service", "BackendConfig", "ManagedCertificate",
                                           "Ingress"]  # fmt: skip
