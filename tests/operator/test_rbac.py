"""The operator's ClusterRole (manifests/base/rbac.yaml) grants every call the operator makes.

The operator (kopf included) runs a whole life cycle against the fake API server: create with
every feature on, children becoming ready, a refused write, features switched off (pruning),
deletion. Every request it made becomes (apiGroup, resource, verb); each must be granted. A
server-side apply may create the object, so it needs ``create`` as well as ``patch``.

Leader election's calls (two replicas: acquire, stand by, renew, release, take over) must be
granted by the namespaced leader-election Role: in its namespace, on the Lease it names.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from memoserve_operator.builders import OWNED_KINDS
from memoserve_operator.kube.client import USER_AGENT, resource_of
from memoserve_operator.kube.leader import lease_namespace
from memoserve_operator.settings import OperatorSettings
from tests.operator.fake_api import (
    APPLY,
    ISVC,
    FakeKube,
    declare_resources,
    eventually,
    isvc_body,
    path,
    running_operator,
    send,
    settle,
)
from tests.operator.fake_leases import LeaseKube, replicas
from tests.operator.helpers import ROOT, SETTINGS

pytestmark = pytest.mark.kmock(cls=FakeKube)

RBAC = ROOT / "manifests" / "base" / "rbac.yaml"
SECURITY_DOC = ROOT / "docs" / "security.md"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
ISVC_PATH = path("serving.memoserve.dev/v1alpha1", "InferenceService")
Permission = tuple[str, str, str]  # (apiGroup, resource, verb)
OPERATOR_AGENTS = (USER_AGENT, "kopf/")  # the operator's client and kopf's (not the test's)
# Kinds a spec change can switch off, so that the reconcile deletes them.
OPTIONAL = {
    "Secret", "HorizontalPodAutoscaler", "BackendConfig", "ManagedCertificate", "Ingress",
    "HealthCheckPolicy", "GCPBackendPolicy", "Gateway", "HTTPRoute",
}  # fmt: skip


@functools.cache
def cluster_roles() -> tuple[dict[str, Any], ...]:
    documents = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    return tuple(d for d in documents if d["kind"] == "ClusterRole")


@functools.cache
def granted() -> frozenset[Permission]:
    """What the operator's ClusterRoles grant together (each bound to its ServiceAccount:
    test_manifests.py)."""
    return frozenset(
        (group, resource, verb)
        for role in cluster_roles()
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    )


def needed(request: Any) -> Iterator[Permission]:
    """What a recorded request needs from RBAC (discovery needs nothing: system:discovery)."""
    resource = request.resource
    if resource is None or not resource.plural:
        return
    plural = f"{resource.plural}/{request.subresource}" if request.subresource else resource.plural
    action = str(request.action.value) if request.action else ""
    action = "PUT" if request.method == "PUT" else action  # kmock has no action for PUT
    verbs = {
        "PUT": ["update"],
        "WATCH": ["watch"],
        "LIST": ["list"],
        "FETCH": ["get"],
        "CREATE": ["create"],
        "DELETE": ["delete"],
        "UPDATE": ["patch"],
    }[action]
    if request.headers.get("Content-Type") == APPLY:
        verbs = ["patch", "create"]
    for verb in verbs:
        yield resource.group, plural, verb


async def life_cycle(api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[Permission]:
    """Everything the operator asks of the API server in one InferenceService's life."""
    declare_resources(api, extra=[CRDS])
    settings = SETTINGS.model_copy(update={"pod_monitoring": True})
    everything = isvc_body(
        cache={"external": {"host": "redis.example.com"}},
        ingress={"enabled": True, "host": "iris.example.com", "managedCertificate": True},
        minReplicas=1,
        maxReplicas=3,
    )
    # From the Ingress to a Gateway of the service's own (the Ingress's kinds pruned), then off.
    gateway = {"gatewayClassName": "gke-l7-global-external-managed", "hostnames": ["iris.a.b"]}
    to_gateway = {"metadata": {"generation": 2}, "spec": {"ingress": None, "gateway": gateway}}
    switched_off = {"cache": None, "gateway": None, "maxReplicas": None}
    plain = {"metadata": {"generation": 3}, "spec": switched_off}
    async with running_operator(api, tmp_path, monkeypatch, settings, scanning=True):
        api.refuse("PATCH", "podmonitorings", 403, "forbidden")  # kopf posts a warning event
        await send(api, "POST", ISVC_PATH, everything, "application/json")
        await settle(api)
        await send(api, "PATCH", f"{ISVC_PATH}/iris", to_gateway)
        await settle(api)
        await send(api, "PATCH", f"{ISVC_PATH}/iris", plain)
        await settle(api)
        await send(api, "DELETE", f"{ISVC_PATH}/iris")
        await eventually(lambda: api.objects[ISVC, "ml", "iris"].deleted)
        await settle(api)
    operator = [r for r in api if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS)]
    return {permission for request in operator for permission in needed(request)}


async def test_every_call_of_a_life_cycle_is_granted(
    kmock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = await life_cycle(kmock, tmp_path, monkeypatch)
    missing = sorted(calls - granted())
    assert not missing, f"manifests/base/rbac.yaml lacks: {missing}"

    # The life cycle reached every owned kind (and pruned each one a spec can switch off).
    for api_version, kind in OWNED_KINDS:
        resource = resource_of(api_version, kind)
        assert (resource.group, resource.plural, "patch") in calls, kind
        if kind in OPTIONAL:
            assert (resource.group, resource.plural, "delete") in calls, kind
    assert ("serving.memoserve.dev", "inferenceservices/status", "patch") in calls
    assert ("", "events", "create") in calls
    assert ("", "pods", "list") in calls

    # A cluster-wide list or watch on Secrets would let the operator read every Secret.
    secrets = {verb for _, resource, verb in calls if resource == "secrets"}
    assert secrets == {"get", "create", "patch", "delete"}


def test_pruning_may_reach_every_owned_kind() -> None:
    # Any owned kind can be pruned (e.g. PodMonitoring after the operator setting is turned
    # off): found by label (by name for Secrets), then deleted.
    for api_version, kind in OWNED_KINDS:
        resource = resource_of(api_version, kind)
        find = "get" if kind == "Secret" else "list"
        for verb in (find, "delete", "create", "patch"):
            assert (resource.group, resource.plural, verb) in granted(), (kind, verb)


@functools.cache
def leader_election_role() -> dict[str, Any]:
    documents = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    role: dict[str, Any] = next(d for d in documents if d["kind"] == "Role")
    return role


def granted_by_the_role(request: Any) -> bool:
    """Whether the leader-election Role grants all ``request`` needs: its namespace only, and
    the names its rules list (a rule without resourceNames grants any name)."""
    role = leader_election_role()
    return request.namespace == role["metadata"]["namespace"] and all(
        any(
            group in rule["apiGroups"]
            and resource in rule["resources"]
            and verb in rule["verbs"]
            and request.name in rule.get("resourceNames", [request.name])
            for rule in role["rules"]
        )
        for group, resource, verb in needed(request)
    )


@pytest.mark.looptime
@pytest.mark.kmock(cls=LeaseKube)
async def test_every_lease_call_of_an_election_is_granted(kmock: LeaseKube) -> None:
    settings = OperatorSettings()  # the Lease the deployment's pods use (POD_NAMESPACE)
    namespace = lease_namespace(settings, {"POD_NAMESPACE": "memoserve-system"})
    async with replicas(kmock, namespace, settings.lease_name) as start:
        a = await start("a")  # creates the Lease
        await eventually(lambda: a.acting)
        b = await start("b")  # stands by, reading it
        await asyncio.sleep(20)  # a renews
        a.terminated.set()  # a releases
        await eventually(lambda: b.acting, within=30)  # b takes it over
    leases = [
        r
        for r in kmock
        if r.headers.get("User-Agent", "").startswith(USER_AGENT)
        and r.resource is not None
        and r.resource.plural == "leases"
    ]
    assert {verb for request in leases for _, _, verb in needed(request)} == {
        "get",
        "create",
        "update",
    }
    refused = sorted(
        {(str(r.method.value), r.url.path) for r in leases if not granted_by_the_role(r)}
    )
    assert not refused, f"the leader-election Role in manifests/base/rbac.yaml lacks: {refused}"


def test_no_list_on_secrets_and_no_writes_on_pods() -> None:
    assert ("", "secrets", "list") not in granted()
    assert ("", "secrets", "watch") not in granted()
    assert ("", "pods", "patch") not in granted()


def test_secrets_have_a_cluster_role_of_their_own() -> None:
    """So that a site can bind it per namespace (docs/security.md)."""
    roles = {role["metadata"]["name"]: role for role in cluster_roles()}
    assert roles["memoserve-operator-secrets"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch", "delete"]}
    ]
    others = [role for name, role in roles.items() if name != "memoserve-operator-secrets"]
    assert not any("secrets" in rule["resources"] for role in others for rule in role["rules"])


def test_security_doc_says_what_is_granted_on_secrets() -> None:
    """docs/security.md's one-line claim is the truth: its verbs are exactly the granted ones,
    and none it says are never granted is."""
    claim = re.search(r"Cluster-wide on Secrets: (.*?)\. Never (.*?)\.", SECURITY_DOC.read_text())
    assert claim, "docs/security.md lost its line 'Cluster-wide on Secrets: ... Never ...'"
    said, never = (set(re.findall(r"`(\w+)`", part)) for part in claim.groups())
    secrets = {verb for group, resource, verb in granted() if (group, resource) == ("", "secrets")}
    assert said == secrets
    assert {"list", "watch"} <= never
    assert not never & secrets
