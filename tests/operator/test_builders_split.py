"""The split's builders (docs/front.md), table-driven: which objects, which tier gets what."""

from __future__ import annotations

from typing import Any

import pytest

from memoserve_operator.builders import build_all
from tests.operator.helpers import SETTINGS, make_isvc, validate_object

GPU = {"type": "nvidia-l4"}
EXTERNAL = {"external": {"host": "10.0.0.3", "passwordSecretRef": {"name": "auth"}}}
TRITON = {"image": "tritonserver:24.08", "port": 8000, "readinessPath": "/ready"}


def split(**spec: Any) -> Any:
    return make_isvc(front={"enabled": True} | spec.pop("front", {}), **spec)


def by_name(isvc: Any, settings: Any = SETTINGS) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in build_all(isvc, settings)}


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({}, []),  # front.enabled false: exactly one tier
        ({"front": {"enabled": False}}, []),
        (
            {"front": {"enabled": True}},
            ["Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"],
        ),
        (
            {"front": {"enabled": True}, "maxReplicas": 3},
            [
                "Deployment",
                "Service",
                "PodDisruptionBudget",
                "HorizontalPodAutoscaler",
                "NetworkPolicy",
            ],
        ),
        (
            {"front": {"enabled": True}, "networkPolicy": {"enabled": False}},
            ["Deployment", "Service", "PodDisruptionBudget"],
        ),
    ],
)
def test_model_tier_objects(spec: dict[str, Any], names: list[str]) -> None:
    objects = build_all(make_isvc(**spec), SETTINGS)
    assert [o["kind"] for o in objects if o["metadata"]["name"] == "iris-model"] == names
    for obj in objects:
        validate_object(obj)


@pytest.mark.parametrize(
    ("front", "hpa"),
    [
        ({"minReplicas": 2}, None),
        ({"minReplicas": 2, "maxReplicas": 2}, None),
        ({"maxReplicas": 5}, 80),
        ({"maxReplicas": 5, "targetCPUUtilization": 60}, 60),
    ],
)
def test_front_hpa_on_cpu_only_when_autoscaled(front: dict[str, Any], hpa: int | None) -> None:
    objects = by_name(split(front=front))
    found = objects.get(("HorizontalPodAutoscaler", "iris"))
    deployment = objects["Deployment", "iris"]
    if hpa is None:
        assert found is None
        assert deployment["spec"]["replicas"] == front["minReplicas"]
        return
    assert found is not None
    assert found["spec"]["scaleTargetRef"]["name"] == "iris"
    assert [m["resource"]["target"]["averageUtilization"] for m in found["spec"]["metrics"]] == [
        hpa
    ]
    assert "replicas" not in deployment["spec"]


@pytest.mark.parametrize(
    ("model", "autoscaling", "metrics"),
    [
        ({}, None, [("Pods", "16")]),
        ({}, {"targetInflightRequestsPerPod": 4}, [("Pods", "4")]),
        ({}, {"targetCPUUtilization": 50}, [("Resource", 50), ("Pods", "16")]),
        ({"server": TRITON}, None, [("Resource", 80)]),
        ({"server": TRITON}, {"targetCPUUtilization": 50}, [("Resource", 50)]),
        ({"server": TRITON}, {"targetInflightRequestsPerPod": 8}, [("External", "8")]),
        (
            {"server": TRITON},
            {"targetCPUUtilization": 50, "targetInflightRequestsPerPod": 8},
            [("Resource", 50), ("External", "8")],
        ),
    ],
)
def test_model_hpa(model: dict[str, Any], autoscaling: Any, metrics: list[Any]) -> None:
    base: dict[str, Any] = {"uri": "gs://m/repo/"} | ({} if model else {"format": "onnx"})
    spec: dict[str, Any] = {"model": base | model, "maxReplicas": 4}
    if autoscaling:
        spec["autoscaling"] = autoscaling
    hpa = by_name(split(**spec))["HorizontalPodAutoscaler", "iris-model"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "iris-model"
    found = [
        (m["type"], m["resource"]["target"]["averageUtilization"])
        if m["type"] == "Resource"
        else (m["type"], m[m["type"].lower()]["target"]["averageValue"])
        for m in hpa["spec"]["metrics"]
    ]
    assert found == metrics
    validate_object(hpa)


def test_front_is_cpu_only_and_holds_the_cache_and_tls() -> None:
    isvc = split(
        gpu=GPU, cache=EXTERNAL, grpc={"enabled": True}, ingress={"enabled": True, "host": "h"}
    )
    objects = by_name(isvc)
    front, model = pod(objects["Deployment", "iris"]), pod(objects["Deployment", "iris-model"])
    assert "nodeSelector" not in front
    assert "tolerations" not in front
    assert "nvidia.com/gpu" not in front["containers"][0]["resources"]["limits"]
    assert front["containers"][0]["image"] == "memoserve:test"  # not the CUDA image
    assert {v["name"] for v in front["volumes"]} == {"tmp", "redis-auth", "grpc-tls"}
    assert model["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert model["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert model["containers"][0]["image"] == "memoserve:test-cuda"
    assert {v["name"] for v in model["volumes"]} == {"models", "tmp"}
    env = {e["name"]: e for e in model["containers"][0]["env"]}
    assert env["MEMOSERVE_CACHE_ENABLED"]["value"] == "false"
    assert not any("REDIS" in name or "valueFrom" in e for name, e in env.items())
    assert [p["name"] for p in model["containers"][0]["ports"]] == ["http"]


def test_selectors_are_disjoint_and_every_front_selector_stays_on_the_front() -> None:
    objects = by_name(split(cache=EXTERNAL, ingress={"enabled": True, "host": "h"}))
    front = objects["Deployment", "iris"]["spec"]["selector"]["matchLabels"]
    model = objects["Deployment", "iris-model"]["spec"]["selector"]["matchLabels"]
    assert front["app.kubernetes.io/component"] != model["app.kubernetes.io/component"]
    assert objects["Service", "iris"]["spec"]["selector"] == front
    assert objects["PodDisruptionBudget", "iris"]["spec"]["selector"]["matchLabels"] == front
    assert objects["NetworkPolicy", "iris"]["spec"]["podSelector"]["matchLabels"] == front
    assert objects["Service", "iris-model"]["spec"]["selector"] == model
    assert objects["PodDisruptionBudget", "iris-model"]["spec"]["selector"]["matchLabels"] == model
    assert objects["NetworkPolicy", "iris-model"]["spec"]["podSelector"]["matchLabels"] == model
    assert (
        objects["Ingress", "iris"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"][
            "name"
        ]
        == "iris"
    )


def test_network_policies_of_the_split() -> None:
    objects = by_name(split(model={"uri": "gs://m/r/", "server": TRITON}, cache=EXTERNAL))
    front = objects["NetworkPolicy", "iris"]["spec"]
    model = objects["NetworkPolicy", "iris-model"]["spec"]
    to_model = front["egress"][-1]
    assert to_model["to"] == [{"podSelector": {"matchLabels": model["podSelector"]["matchLabels"]}}]
    assert to_model["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert model["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": front["podSelector"]["matchLabels"]}}],
            "ports": [{"protocol": "TCP", "port": "http"}],
        }
    ]
    assert not any(r.get("to") == [{"ipBlock": {"cidr": "10.0.0.3/32"}}] for r in model["egress"])
    assert objects["Service", "iris-model"]["spec"]["ports"][0]["port"] == 8000


def test_external_server_container() -> None:
    env = [{"name": "A", "value": "1"}]
    isvc = split(
        model={"uri": "gs://m/r/", "server": TRITON | {"args": ["--x"], "env": env}}, gpu=GPU
    )
    main = pod(by_name(isvc)["Deployment", "iris-model"])["containers"][0]
    assert (main["image"], main["args"], main["env"]) == ("tritonserver:24.08", ["--x"], env)
    assert "command" not in main  # the image's own
    assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert main["startupProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert main["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert main["securityContext"]["runAsNonRoot"] is True


def test_pod_monitoring_scrapes_both_tiers() -> None:
    settings = SETTINGS.model_copy(update={"pod_monitoring": True})
    objects = by_name(split(), settings)
    spec = objects["PodMonitoring", "iris"]["spec"]
    assert "app.kubernetes.io/component" not in spec["selector"]["matchLabels"]
    # The label the model tier's External metric selects the front pods' series by.
    assert spec["targetLabels"] == {
        "fromPod": [{"from": "app.kubernetes.io/instance", "to": "memoserve_service"}]
    }
    gmp = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}}}
    assert gmp in objects["NetworkPolicy", "iris-model"]["spec"]["ingress"][0]["from"]
