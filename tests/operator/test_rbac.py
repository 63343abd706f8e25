"""The operator's ClusterRole (manifests/base/rbac.yaml) grants every call the operator makes.

The operator (kopf included) runs a whole life cycle against the fake API server: create with
every feature on, children becoming ready, a refused write, features switched off (pruning),
deletion. Every request it made becomes (apiGroup, resource, verb); each must be granted. A
server-side apply may create the object, so it needs ``create`` as well as ``patch``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from memoserve_operator.builders import OWNED_KINDS
from memoserve_operator.kube import USER_AGENT, resource_of
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
from tests.operator.helpers import ROOT, SETTINGS

pytestmark = pytest.mark.kmock(cls=FakeKube)

RBAC = ROOT / "manifests" / "base" / "rbac.yaml"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
ISVC_PATH = path("serving.memoserve.dev/v1alpha1", "InferenceService")
Permission = tuple[str, str, str]  # (apiGroup, resource, verb)
OPERATOR_AGENTS = (USER_AGENT, "kopf/")  # the operator's client and kopf's (not the test's)
# Kinds a spec change can switch off, so that the reconcile deletes them.
OPTIONAL = {"Secret", "HorizontalPodAutoscaler", "BackendConfig", "ManagedCertificate", "Ingress"}


@functools.cache
def granted() -> frozenset[Permission]:
    documents = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    role = next(d for d in documents if d["kind"] == "ClusterRole")
    return frozenset(
        (group, resource, verb)
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
    verbs = {
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
    switched_off = {"cache": None, "ingress": None, "maxReplicas": None}
    plain = {"metadata": {"generation": 2}, "spec": switched_off}
    async with running_operator(api, tmp_path, monkeypatch, settings, scanning=True):
        api.refuse("PATCH", "podmonitorings", 403, "forbidden")  # kopf posts a warning event
        await send(api, "POST", ISVC_PATH, everything, "application/json")
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


def test_no_list_on_secrets_and_no_writes_on_pods() -> None:
    assert ("", "secrets", "list") not in granted()
    assert ("", "secrets", "watch") not in granted()
    assert ("", "pods", "patch") not in granted()
