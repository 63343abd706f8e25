"""Table-driven tests of the pure builders: which objects exist, and the fields that matter."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders import OWNED_KINDS, build_all
from memoserve_operator.builders.deployment import build_deployment, config_checksum
from memoserve_operator.builders.meta import selector
from memoserve_operator.settings import OperatorSettings
from tests.operator.helpers import SETTINGS, make_isvc, validate_object

EXTERNAL = {"external": {"host": "redis.example.com"}}
HPA = {"minReplicas": 1, "maxReplicas": 4}
INGRESS = {"enabled": True, "host": "iris.example.com"}
BASE = ["ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"]
NP = "NetworkPolicy"


def _by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def _container(isvc: InferenceService, settings: OperatorSettings = SETTINGS) -> dict[str, Any]:
    container: dict[str, Any] = build_deployment(isvc, settings)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def _env(isvc: InferenceService) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(isvc)["env"]}


@pytest.mark.parametrize(
    ("spec", "settings", "kinds"),
    [
        ({}, SETTINGS, [*BASE, NP]),
        ({"cache": EXTERNAL}, SETTINGS, ["ServiceAccount", "Secret", *BASE[1:], NP]),
        ({"cache": {"enabled": False, **EXTERNAL}}, SETTINGS, [*BASE, NP]),
        ({"cache": {"memorystore": {}}}, SETTINGS, [*BASE, NP]),  # no endpoint learned yet
        (HPA, SETTINGS, [*BASE, "HorizontalPodAutoscaler", NP]),
        ({"minReplicas": 2, "maxReplicas": 2}, SETTINGS, [*BASE, NP]),
        ({"ingress": {**INGRESS, "enabled": False}}, SETTINGS, [*BASE, NP]),
        ({"ingress": INGRESS}, SETTINGS, [*BASE, "BackendConfig", "Ingress", NP]),
        (
            {"ingress": {**INGRESS, "managedCertificate": True}},
            SETTINGS,
            [*BASE, "BackendConfig", "ManagedCertificate", "Ingress", NP],
        ),
        (
            {"ingress": {**INGRESS, "managedCertificateName": "shared"}},
            SETTINGS,
            [*BASE, "BackendConfig", "Ingress", NP],
        ),
        ({}, SETTINGS.model_copy(update={"pod_monitoring": True}), [*BASE, "PodMonitoring", NP]),
        ({"networkPolicy": {"enabled": False}}, SETTINGS, BASE),
    ],
)
def test_objects_per_feature(
    spec: dict[str, Any], settings: OperatorSettings, kinds: list[str]
) -> None:
    objects = build_all(make_isvc(**spec), settings)
    assert [o["kind"] for o in objects] == kinds
    for obj in objects:
        validate_object(obj)


def test_order_follows_owned_kinds() -> None:
    # The Ingress and the Gateway API are exclusive: between them, two services build every
    # owned kind, each in OWNED_KINDS order.
    settings = SETTINGS.model_copy(update={"pod_monitoring": True})
    ingress = make_isvc(cache=EXTERNAL, ingress={**INGRESS, "managedCertificate": True}, **HPA)
    gateway = make_isvc(cache=EXTERNAL, gateway={"gatewayClassName": "gke-l7-rilb"}, **HPA)
    order = list(OWNED_KINDS)
    built = set()
    for isvc in (ingress, gateway):
        kinds = [(o["apiVersion"], o["kind"]) for o in build_all(isvc, settings)]
        assert kinds == sorted(kinds, key=order.index)
        built |= set(kinds)
    assert built == set(OWNED_KINDS)


def test_metadata_on_every_object() -> None:
    isvc = make_isvc(cache=EXTERNAL, ingress={**INGRESS, "managedCertificate": True}, **HPA)
    for obj in build_all(isvc, SETTINGS):
        meta = obj["metadata"]
        assert meta["namespace"] == "ml"
        assert meta["labels"]["app.kubernetes.io/instance"] == "iris"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "memoserve-operator"
        assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= set(meta["labels"])
        assert meta["labels"]["app.kubernetes.io/part-of"] == "memoserve"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "serving.memoserve.dev/v1alpha1",
                "kind": "InferenceService",
                "name": "iris",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_no_owner_reference_without_a_uid() -> None:
    """A rendered file has no uid; a made-up one would get every object garbage-collected."""
    isvc = make_isvc()
    isvc = isvc.model_copy(update={"metadata": isvc.metadata.model_copy(update={"uid": None})})
    for obj in build_all(isvc, SETTINGS):
        assert "ownerReferences" not in obj["metadata"]


@pytest.mark.parametrize(
    ("gpu", "node_selector", "gpus", "image"),
    [
        (None, None, None, "memoserve:test"),
        ({"type": "nvidia-l4"}, {"cloud.google.com/gke-accelerator": "nvidia-l4"}, 1, "-cuda"),
        (
            {"type": "nvidia-h100-80gb", "count": 8},
            {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
            8,
            "-cuda",
        ),
    ],
)
def test_gpu_and_cpu_pods(
    gpu: dict[str, Any] | None, node_selector: dict[str, str] | None, gpus: int | None, image: str
) -> None:
    isvc = make_isvc(**({"gpu": gpu} if gpu else {}))
    pod = build_deployment(isvc, SETTINGS)["spec"]["template"]["spec"]
    assert pod.get("nodeSelector") == node_selector
    container = pod["containers"][0]
    assert container["resources"]["limits"].get("nvidia.com/gpu") == gpus
    assert container["image"].endswith(image)
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod.get("tolerations") == (tolerations if gpu else None)


def test_spec_image_wins() -> None:
    isvc = make_isvc(image="example/custom:1", gpu={"type": "nvidia-l4"})
    assert _container(isvc)["image"] == "example/custom:1"


@pytest.mark.parametrize(
    ("resources", "requests", "limits"),
    [
        (None, {"cpu": "1", "memory": "2Gi"}, {"memory": "2Gi"}),
        ({"requests": {"memory": "8Gi"}}, {"cpu": "1", "memory": "8Gi"}, {"memory": "8Gi"}),
        (
            {"requests": {"cpu": 4}, "limits": {"memory": "4Gi", "cpu": "8"}},
            {"cpu": 4, "memory": "2Gi"},
            {"memory": "4Gi", "cpu": "8"},
        ),
    ],
)
def test_resources_merge_over_defaults(
    resources: dict[str, Any] | None, requests: dict[str, Any], limits: dict[str, Any]
) -> None:
    isvc = make_isvc(**({"resources": resources} if resources else {}))
    assert _container(isvc)["resources"] == {"requests": requests, "limits": limits}


@pytest.mark.parametrize(
    ("spec", "replicas"),
    [
        ({}, 1),
        ({"minReplicas": 3}, 3),
        ({"replicas": 5}, 5),  # kubectl scale
        ({"replicas": 0, "minReplicas": 2, "maxReplicas": 2}, 0),
        ({"minReplicas": 2, "maxReplicas": 6}, None),  # the HPA owns it
    ],
)
def test_replicas(spec: dict[str, Any], replicas: int | None) -> None:
    deployment = build_deployment(make_isvc(**spec), SETTINGS)
    assert deployment["spec"].get("replicas") == replicas
    assert ("replicas" in deployment["spec"]) == (replicas is not None)


@pytest.mark.parametrize(
    ("autoscaling", "metrics"),
    [
        (None, [("Resource", "cpu", 80)]),
        ({"targetCPUUtilization": 60}, [("Resource", "cpu", 60)]),
        ({"targetInflightRequestsPerPod": 8}, [("Pods", "memoserve_inflight_requests", "8")]),
        (
            {"targetCPUUtilization": 70, "targetInflightRequestsPerPod": 4},
            [("Resource", "cpu", 70), ("Pods", "memoserve_inflight_requests", "4")],
        ),
    ],
)
def test_hpa_metrics(
    autoscaling: dict[str, Any] | None, metrics: list[tuple[str, str, Any]]
) -> None:
    isvc = make_isvc(**HPA, **({"autoscaling": autoscaling} if autoscaling else {}))
    hpa = _by_kind(build_all(isvc, SETTINGS))["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert set(hpa["spec"]["behavior"]) == {"scaleUp", "scaleDown"}
    found = []
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Resource":
            target = metric["resource"]["target"]
            found.append(("Resource", metric["resource"]["name"], target["averageUtilization"]))
        else:
            target = metric["pods"]["target"]
            found.append(("Pods", metric["pods"]["metric"]["name"], target["averageValue"]))
    assert found == metrics


def test_inflight_metric_name_is_configurable() -> None:
    settings = SETTINGS.model_copy(
        update={
            "inflight_metric_name": "prometheus.googleapis.com|memoserve_inflight_requests|gauge"
        }
    )
    isvc = make_isvc(**HPA, autoscaling={"targetInflightRequestsPerPod": 8})
    (metric,) = _by_kind(build_all(isvc, settings))["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == settings.inflight_metric_name


@pytest.mark.parametrize(
    ("ingress", "annotations"),
    [
        (INGRESS, {"kubernetes.io/ingress.class": "gce"}),
        (
            {**INGRESS, "staticIPName": "iris-ip", "managedCertificate": True},
            {
                "kubernetes.io/ingress.class": "gce",
                "kubernetes.io/ingress.global-static-ip-name": "iris-ip",
                "networking.gke.io/managed-certificates": "iris",
            },
        ),
        (
            {**INGRESS, "className": "gce-internal", "staticIPName": "iris-ilb"},
            {
                "kubernetes.io/ingress.class": "gce-internal",
                "kubernetes.io/ingress.regional-static-ip-name": "iris-ilb",
            },
        ),
        (
            {**INGRESS, "managedCertificateName": "example-com"},
            {
                "kubernetes.io/ingress.class": "gce",
                "networking.gke.io/managed-certificates": "example-com",
            },
        ),
    ],
)
def test_ingress_classes_and_annotations(
    ingress: dict[str, Any], annotations: dict[str, str]
) -> None:
    objects = _by_kind(build_all(make_isvc(ingress=ingress), SETTINGS))
    assert objects["Ingress"]["metadata"]["annotations"] == annotations
    assert "ingressClassName" not in objects["Ingress"]["spec"]  # GKE reads the annotation
    (rule,) = objects["Ingress"]["spec"]["rules"]
    assert rule["host"] == "iris.example.com"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": "iris", "port": {"number": 80}}
    service = objects["Service"]["metadata"]["annotations"]
    assert service == {
        "cloud.google.com/neg": '{"ingress": true}',
        "cloud.google.com/backend-config": '{"default": "iris"}',
    }
    health = objects["BackendConfig"]["spec"]["healthCheck"]
    assert (health["requestPath"], health["port"], health["type"]) == (
        "/v2/health/ready",
        8080,
        "HTTP",
    )


def test_ingress_without_host_matches_every_host() -> None:
    ingress = _by_kind(build_all(make_isvc(ingress={"enabled": True, "path": "/v2"}), SETTINGS))
    (rule,) = ingress["Ingress"]["spec"]["rules"]
    assert "host" not in rule
    assert rule["http"]["paths"][0]["path"] == "/v2"


def test_service_without_ingress_has_no_gke_annotations() -> None:
    service = _by_kind(build_all(make_isvc(), SETTINGS))["Service"]
    assert "annotations" not in service["metadata"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def test_workload_identity() -> None:
    gsa = "reader@my-project.iam.gserviceaccount.com"
    account = _by_kind(build_all(make_isvc(serviceAccount={"gcpServiceAccount": gsa}), SETTINGS))[
        "ServiceAccount"
    ]
    assert account["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": gsa}
    pod = build_deployment(make_isvc(), SETTINGS)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "iris"


def test_restricted_pod_security() -> None:
    pod = build_deployment(make_isvc(), SETTINGS)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # The read-only root needs somewhere to write: the model download and /tmp.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/models": "models", "/tmp": "tmp"}
    assert _env(make_isvc())["MEMOSERVE_MODEL_DIR"] == "/models"
    assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} == {"models", "tmp"}
    zones = [c["topologyKey"] for c in pod["topologySpreadConstraints"]]
    assert "topology.kubernetes.io/zone" in zones


def test_probes_use_the_v2_health_endpoints() -> None:
    container = _container(make_isvc())
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # model download budget


@pytest.mark.parametrize(
    ("drain", "grace", "env"), [(None, 50, "15.0"), (20, 55, "20.0"), (0, 35, "0.0")]
)
def test_grace_period_covers_the_drain(drain: int | None, grace: int, env: str) -> None:
    isvc = make_isvc(**({"drainSeconds": drain} if drain is not None else {}))
    pod = build_deployment(isvc, SETTINGS)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace
    assert _env(isvc)["MEMOSERVE_DRAIN_SECONDS"] == env


def test_pdb_never_blocks_a_drain() -> None:
    pdb = _by_kind(build_all(make_isvc(), SETTINGS))["PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]


def test_selector_string_matches_the_pods() -> None:
    pod_labels = build_deployment(make_isvc(), SETTINGS)["spec"]["template"]["metadata"]["labels"]
    pairs = dict(part.split("=") for part in selector(make_isvc()).split(","))
    assert pairs.items() <= pod_labels.items()


def test_checksum_follows_model_and_cache_only() -> None:
    base = make_isvc(cache=EXTERNAL)
    same = [make_isvc(cache=EXTERNAL, replicas=3), make_isvc(cache=EXTERNAL, ingress=INGRESS)]
    different = [
        make_isvc(cache=EXTERNAL, model={"uri": "gs://my-models/iris-v2/", "format": "sklearn"}),
        make_isvc(cache={**EXTERNAL, "ttlSeconds": 5}),
        make_isvc(),
    ]
    checksum = config_checksum(base, None)
    assert all(config_checksum(isvc, None) == checksum for isvc in same)
    assert all(config_checksum(isvc, None) != checksum for isvc in different)
    # A new AUTH string in the Secret is invisible in the pod template: it must still roll.
    assert config_checksum(base, RedisEndpoint("h", 1, password="a")) != config_checksum(
        base, RedisEndpoint("h", 1, password="b")
    )


def test_memorystore_resize_does_not_roll_the_pods() -> None:
    small = make_isvc(cache={"memorystore": {"memorySizeGb": 1}})
    large = make_isvc(cache={"memorystore": {"memorySizeGb": 5, "redisConfigs": {"a": "b"}}})
    endpoint = RedisEndpoint("10.0.0.3", 6379)
    assert config_checksum(small, endpoint) == config_checksum(large, endpoint)
    # ...but a new endpoint (another instance, a new AUTH string) does.
    assert config_checksum(small, endpoint) != config_checksum(
        small, RedisEndpoint("10.0.0.4", 6379)
    )
    assert config_checksum(small, endpoint) != config_checksum(make_isvc(cache=EXTERNAL), endpoint)


def test_builders_do_not_mutate_their_input() -> None:
    isvc = make_isvc(cache=EXTERNAL, ingress={**INGRESS, "managedCertificate": True}, **HPA)
    settings = SETTINGS.model_copy(update={"pod_monitoring": True})
    before = (copy.deepcopy(isvc.model_dump()), copy.deepcopy(settings.model_dump()))
    first = build_all(isvc, settings)
    assert (isvc.model_dump(), settings.model_dump()) == before
    # Nor share state between calls: editing one result leaves the next one alone.
    snapshot = copy.deepcopy(first)
    for obj in first:
        obj["spec" if "spec" in obj else "metadata"].clear()
    assert build_all(isvc, settings) == snapshot


# --- NetworkPolicy --------------------------------------------------------------------------


def _policy(isvc: InferenceService, settings: OperatorSettings = SETTINGS, **kw: Any) -> Any:
    (policy,) = [o for o in build_all(isvc, settings, **kw) if o["kind"] == "NetworkPolicy"]
    validate_object(policy)
    return policy["spec"]


def _sources(spec: dict[str, Any]) -> list[Any]:
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]  # the serving port only
    return list(rule["from"])


def _block(cidr: str) -> dict[str, Any]:
    return {"ipBlock": {"cidr": cidr}}


def _tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


LB = [{"ipBlock": {"cidr": "35.191.0.0/16"}}, {"ipBlock": {"cidr": "130.211.0.0/22"}}]
GMP = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}}}


@pytest.mark.parametrize(
    ("spec", "settings", "sources"),
    [
        ({}, SETTINGS, [{"podSelector": {}}]),
        ({"ingress": INGRESS}, SETTINGS, [{"podSelector": {}}, *LB]),
        ({}, SETTINGS.model_copy(update={"pod_monitoring": True}), [{"podSelector": {}}, GMP]),
        (
            {"networkPolicy": {"ingressCidrs": ["10.129.0.0/23"]}},
            SETTINGS,
            [{"podSelector": {}}, {"ipBlock": {"cidr": "10.129.0.0/23"}}],
        ),
        (
            {"ingress": INGRESS},
            SETTINGS.model_copy(update={"lb_source_ranges": ("192.0.2.0/24",)}),
            [{"podSelector": {}}, {"ipBlock": {"cidr": "192.0.2.0/24"}}],
        ),
    ],
)
def test_network_policy_lets_in_only_who_needs_the_serving_port(
    spec: dict[str, Any], settings: OperatorSettings, sources: list[Any]
) -> None:
    policy = _policy(make_isvc(**spec), settings)
    assert policy["podSelector"] == {"matchLabels": selector_labels_of(make_isvc(**spec))}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert _sources(policy) == sources


def selector_labels_of(isvc: InferenceService) -> dict[str, str]:
    return dict(item.split("=") for item in selector(isvc).split(","))


@pytest.mark.parametrize(
    ("endpoint", "redis_rule"),
    [
        (None, None),
        (
            RedisEndpoint("10.0.0.3", 6378, tls=True),
            {
                "to": [{"ipBlock": {"cidr": "10.0.0.3/32"}}],
                "ports": [{"protocol": "TCP", "port": 6378}],
            },
        ),
        (
            RedisEndpoint("fd00::3", 6379),
            {
                "to": [{"ipBlock": {"cidr": "fd00::3/128"}}],
                "ports": [{"protocol": "TCP", "port": 6379}],
            },
        ),
        (RedisEndpoint("redis.example.com", 6380), {"ports": [{"protocol": "TCP", "port": 6380}]}),
        # A cluster's nodes: the PSC node port range on every PSC address.
        (
            RedisEndpoint(
                "10.0.0.5",
                6379,
                engine="valkey",
                auth="iam",
                cluster=True,
                node_addresses=("10.0.0.5", "10.0.0.6"),
            ),
            {
                "to": [{"ipBlock": {"cidr": "10.0.0.5/32"}}, {"ipBlock": {"cidr": "10.0.0.6/32"}}],
                "ports": [
                    {"protocol": "TCP", "port": 6379},
                    {"protocol": "TCP", "port": 11000, "endPort": 13047},
                ],
            },
        ),
        # PSC addresses not known: the ports to any address, not only the discovery one.
        (
            RedisEndpoint("10.0.0.5", 6379, engine="redis-cluster", cluster=True),
            {
                "ports": [
                    {"protocol": "TCP", "port": 6379},
                    {"protocol": "TCP", "port": 11000, "endPort": 13047},
                ]
            },
        ),
    ],
)
def test_network_policy_egress(endpoint: RedisEndpoint | None, redis_rule: Any) -> None:
    isvc = make_isvc(cache={"memorystore": {}}) if endpoint is not None else make_isvc()
    egress = _policy(isvc, redis=endpoint)["egress"]
    assert egress[:4] == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {
            "to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        },
        {
            "to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
            "ports": [{"protocol": "TCP", "port": 988}],
        },
        {"ports": [{"protocol": "TCP", "port": 443}]},
    ]
    assert egress[4:] == ([redis_rule] if redis_rule is not None else [])


def test_network_policy_can_be_switched_off() -> None:
    kinds = [o["kind"] for o in build_all(make_isvc(networkPolicy={"enabled": False}), SETTINGS)]
    assert "NetworkPolicy" not in kinds
