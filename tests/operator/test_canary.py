"""The canary's builders (spec.canary), table-driven: which objects, disjoint selectors, the
traffic split, and a promotion that gives the stable Deployment the canary's pod template."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.canary import canary_service
from memoserve_contract.resource.status import CanaryStatus
from memoserve_operator.builders import OWNED_KINDS, build_all, child_names
from memoserve_operator.builders.traffic import Backend, backends
from memoserve_operator.children.promotion import promotion_pending
from memoserve_operator.status.canary import canary_status
from tests.operator.helpers import SETTINGS, make_isvc

V1 = {"uri": "gs://my-models/iris/v1/", "format": "sklearn", "version": "1"}
V2 = {"uri": "gs://my-models/iris/v2/", "format": "sklearn", "version": "2"}
CACHE = {"external": {"host": "10.0.0.3"}}
POLICY_SELECTED = ("Service", "PodDisruptionBudget", "NetworkPolicy")


def with_canary(percent: int = 10, **canary: Any) -> Any:
    spec = {"trafficPercent": percent, "model": V2} | canary
    return make_isvc(model=V1, cache=CACHE, minReplicas=2, maxReplicas=4, canary=spec)


def by_name(isvc: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in build_all(isvc, SETTINGS)}


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def selector_of(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj["spec"]
    found: dict[str, str] = (
        spec["selector"] if obj["kind"] == "Service" else
        spec["podSelector"]["matchLabels"] if obj["kind"] == "NetworkPolicy" else
        spec["selector"]["matchLabels"]
    )  # fmt: skip
    return found


@pytest.mark.parametrize(
    ("canary", "kinds"),
    [
        ({}, ["Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"]),
        (
            {"maxReplicas": 3},
            [
                "Deployment",
                "Service",
                "PodDisruptionBudget",
                "HorizontalPodAutoscaler",
                "NetworkPolicy",
            ],
        ),
        (
            {"minReplicas": 2, "maxReplicas": 2},
            ["Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"],
        ),
    ],
)
def test_the_canary_gets_its_own_objects(canary: dict[str, Any], kinds: list[str]) -> None:
    objects = build_all(with_canary(**canary), SETTINGS)
    assert [o["kind"] for o in objects if o["metadata"]["name"] == "iris-canary"] == kinds
    for kind in kinds:  # every name it has is one pruning looks up
        assert "iris-canary" in child_names(with_canary(), kind)
    assert {o["kind"] for o in objects} <= {kind for _, kind in OWNED_KINDS}


def test_no_canary_builds_nothing_of_it() -> None:
    isvc = make_isvc(model=V1, cache=CACHE)
    assert [o for o in build_all(isvc, SETTINGS) if "canary" in o["metadata"]["name"]] == []
    assert canary_service(isvc) is None


def test_no_stable_selector_matches_a_canary_pod_and_the_other_way_round() -> None:
    found = by_name(with_canary())
    stable_pods = pod_labels(found["Deployment", "iris"])
    canary_pods = pod_labels(found["Deployment", "iris-canary"])
    for kind in POLICY_SELECTED:
        assert selects(selector_of(found[kind, "iris"]), stable_pods), kind
        assert not selects(selector_of(found[kind, "iris"]), canary_pods), kind
        assert selects(selector_of(found[kind, "iris-canary"]), canary_pods), kind
        assert not selects(selector_of(found[kind, "iris-canary"]), stable_pods), kind
    # The Deployments' own selectors too (two controllers must never claim one pod).
    assert not selects(found["Deployment", "iris"]["spec"]["selector"]["matchLabels"], canary_pods)


def test_pod_monitoring_scrapes_the_canary_pods_too() -> None:
    """Managed Prometheus scrapes both versions: each HPA reads its own pods' metric."""
    settings = SETTINGS.model_copy(update={"pod_monitoring": True})
    found = {(o["kind"], o["metadata"]["name"]): o for o in build_all(with_canary(), settings)}
    selector = found["PodMonitoring", "iris"]["spec"]["selector"]["matchLabels"]
    assert selects(selector, pod_labels(found["Deployment", "iris"]))
    assert selects(selector, pod_labels(found["Deployment", "iris-canary"]))


def test_the_canary_runs_its_model_with_the_stable_name_and_cache() -> None:
    found = by_name(with_canary())
    stable = env_of(found["Deployment", "iris"])
    canary = env_of(found["Deployment", "iris-canary"])
    assert stable["MEMOSERVE_MODEL_URI"] == V1["uri"]
    assert canary["MEMOSERVE_MODEL_URI"] == V2["uri"]
    assert canary["MEMOSERVE_MODEL_VERSION"] == "2"
    # Clients' URL and the cache namespace are the service's: the digest keeps answers apart.
    assert canary["MEMOSERVE_MODEL_NAME"] == stable["MEMOSERVE_MODEL_NAME"] == "iris"
    assert canary["MEMOSERVE_CACHE_NAMESPACE"] == stable["MEMOSERVE_CACHE_NAMESPACE"] == "ml/iris"
    # Its hit ratio is counted apart (status.canary.hitRatio).
    assert canary["MEMOSERVE_CACHE_STATS_NAMESPACE"] == "ml/iris-canary"
    assert "MEMOSERVE_CACHE_STATS_NAMESPACE" not in stable
    assert (
        found["Deployment", "iris"]["spec"]["template"]["metadata"]["annotations"]
        != found["Deployment", "iris-canary"]["spec"]["template"]["metadata"]["annotations"]
    )


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_replicas_follow_the_canary_bounds() -> None:
    fixed = by_name(with_canary(minReplicas=3))["Deployment", "iris-canary"]
    assert fixed["spec"]["replicas"] == 3
    scaled = by_name(with_canary(maxReplicas=5))
    assert "replicas" not in scaled["Deployment", "iris-canary"]["spec"]
    hpa = scaled["HorizontalPodAutoscaler", "iris-canary"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 5)
    assert hpa["scaleTargetRef"]["name"] == "iris-canary"
    # kubectl scale (spec.replicas) is the stable's.
    stable = make_isvc(model=V1, replicas=4, canary={"trafficPercent": 5, "model": V2})
    assert by_name(stable)["Deployment", "iris-canary"]["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("percent", "weights"), [(0, (100, 0)), (10, (90, 10)), (50, (50, 50)), (100, (0, 100))]
)
def test_backends_split_by_traffic_percent(percent: int, weights: tuple[int, int]) -> None:
    assert backends(with_canary(percent)) == (
        Backend("iris", weights[0]),
        Backend("iris-canary", weights[1]),
    )


def test_backends_without_a_canary() -> None:
    assert backends(make_isvc()) == (Backend("iris", 100),)


def promoted(isvc: Any) -> Any:
    """What the user applies to promote: canary.model into spec.model, spec.canary removed."""
    body = isvc.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["spec"]["model"] = body["spec"].pop("canary")["model"]
    return type(isvc).from_body(body)


def relabelled(template: dict[str, Any], component: str) -> dict[str, Any]:
    """``template`` with the pods' component (and the spread constraints' selector) changed
    and the canary's stats namespace taken out."""
    found = copy.deepcopy(template)
    found["metadata"]["labels"]["app.kubernetes.io/component"] = component
    spec = found["spec"]
    for spread in spec["topologySpreadConstraints"]:
        spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] = component
    container = spec["containers"][0]
    container["env"] = [
        e for e in container["env"] if e["name"] != "MEMOSERVE_CACHE_STATS_NAMESPACE"
    ]
    return found


@pytest.mark.parametrize("canary", [{}, {"maxReplicas": 3}])
def test_promotion_gives_the_stable_deployment_the_canary_pod_template(
    canary: dict[str, Any],
) -> None:
    """What passed as the canary is exactly what the stable pods run after the promotion (same
    model, settings and config checksum): only the labels the selectors need differ."""
    before = with_canary(**canary)
    after = by_name(promoted(before))
    canary_template = by_name(before)["Deployment", "iris-canary"]["spec"]["template"]
    stable_template = after["Deployment", "iris"]["spec"]["template"]
    assert stable_template == relabelled(canary_template, "serving")
    assert not [name for _, name in after if name == "iris-canary"]


def test_rollback_leaves_the_stable_deployment_as_it_was() -> None:
    with_it = by_name(with_canary())
    without = by_name(make_isvc(model=V1, cache=CACHE, minReplicas=2, maxReplicas=4))
    assert with_it["Deployment", "iris"] == without["Deployment", "iris"]
    assert with_it["Service", "iris"] == without["Service", "iris"]


def test_the_route_weights_the_two_services() -> None:
    gateway = {"parentRef": {"name": "shared"}}
    isvc = make_isvc(model=V1, gateway=gateway, grpc={"enabled": True}, canary={"model": V2,
                     "trafficPercent": 30})  # fmt: skip
    route = by_name(isvc)["HTTPRoute", "iris"]
    for rule in route["spec"]["rules"]:  # gRPC's and HTTP's
        weights = [(ref["name"], ref["weight"]) for ref in rule["backendRefs"]]
        assert weights == [("iris", 70), ("iris-canary", 30)]
    found = by_name(isvc)
    for kind in ("HealthCheckPolicy", "GCPBackendPolicy"):
        assert found[kind, "iris-canary"]["spec"]["targetRef"]["name"] == "iris-canary"
        assert "iris-canary" in child_names(make_isvc(model=V1, gateway=gateway), kind)


def test_status_canary_reports_its_own_pods_digest_and_hit_ratio() -> None:
    live = {
        ("Deployment", "iris"): {"spec": {"replicas": 2}, "status": {"readyReplicas": 2}},
        ("Deployment", "iris-canary"): {
            "spec": {"replicas": 1},
            "status": {"replicas": 1, "readyReplicas": 1},
        },
    }
    found = canary_status(with_canary(15), live, CacheStats(hits=3, lookups=4, digest="sha256:v2"))
    assert found == CanaryStatus(
        traffic_percent=15,
        replicas=1,
        ready_replicas=1,
        replica_summary="1/1",
        model_digest="sha256:v2",
        hit_ratio="75%",
    )
    assert canary_status(make_isvc(), live, None) is None


def deployment_of(isvc: Any, name: str, **status: int) -> dict[str, Any]:
    """The live Deployment: the HPA has set 2 replicas."""
    found = by_name(isvc)["Deployment", name]
    return found | {"spec": found["spec"] | {"replicas": 2}, "status": status}


ROLLED_OUT = {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2}


@pytest.mark.parametrize(
    ("stable_status", "live_stable_is_promoted", "pending"),
    [
        ({}, False, True),  # the promotion's first reconcile: NAME still has the old template
        ({"replicas": 3, "readyReplicas": 2, "updatedReplicas": 1}, True, True),  # rolling
        (ROLLED_OUT, True, False),  # every stable pod runs what the canary ran
    ],
)
def test_a_promotion_waits_for_the_stable_rollout(
    stable_status: dict[str, int], live_stable_is_promoted: bool, pending: bool
) -> None:
    before = with_canary(100)
    after = promoted(before)
    canary = deployment_of(before, "iris-canary", **ROLLED_OUT)
    stable = deployment_of(after if live_stable_is_promoted else before, "iris", **stable_status)
    desired = build_all(after, SETTINGS)
    assert promotion_pending(after, desired, stable, canary) is pending


def test_a_rollback_or_a_live_canary_never_waits() -> None:
    before = with_canary(10)
    rolled_back = make_isvc(model=V1, cache=CACHE, minReplicas=2, maxReplicas=4)
    canary = deployment_of(before, "iris-canary", **ROLLED_OUT)
    stable = deployment_of(before, "iris")  # not even ready: a rollback still prunes at once
    assert not promotion_pending(rolled_back, build_all(rolled_back, SETTINGS), stable, canary)
    assert not promotion_pending(before, build_all(before, SETTINGS), stable, canary)
    assert not promotion_pending(promoted(before), build_all(before, SETTINGS), stable, None)
