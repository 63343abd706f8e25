"""manifests/base and manifests/overlays/gke: what `kubectl apply -k` installs for the operator.

Rendered with tests/operator/kustomize_render.py (kept honest against `kubectl kustomize` when
kubectl is installed), then every object is checked against the Kubernetes 1.30 schemas and the
operator's contract: restricted security, least-privilege RBAC, configuration names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import kubernetes_validate
import pytest
import yaml

from memoserve_contract.quantity import parse_quantity
from tests.operator.kustomize_render import Obj, RenderError, object_id, render
from tests.support.controlplane import control_plane_binaries

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
BASE = MANIFESTS / "base"
GKE = MANIFESTS / "overlays" / "gke"
CRDS = ROOT / "crds"
K8S_VERSION = "1.30"
NAMESPACE = "memoserve-system"
NAME = "memoserve-operator"
GROUP = "serving.memoserve.dev"

# Kinds without a schema in kubernetes-validate, checked by hand below.
NO_SCHEMA_KINDS = {"PodMonitoring"}

CONFIG_KEYS = {
    "MEMOSERVE_OPERATOR_DEFAULT_IMAGE",
    "MEMOSERVE_OPERATOR_DEFAULT_GPU_IMAGE",
    "MEMOSERVE_OPERATOR_GCP_PROJECT",
    "MEMOSERVE_OPERATOR_GCP_REGION",
    "MEMOSERVE_OPERATOR_NAMESPACES",
    "MEMOSERVE_OPERATOR_POD_MONITORING",
    "MEMOSERVE_OPERATOR_LOG_LEVEL",
    "MEMOSERVE_OPERATOR_LOG_FORMAT",
}
POD_ENV = {"MEMOSERVE_OPERATOR_LIVENESS_URL", "MEMOSERVE_OPERATOR_METRICS_PORT"}
# The downward API: leader election's identity and the Lease's namespace (leader.py).
DOWNWARD_ENV = {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
LEADER_ELECTION = "memoserve-operator-leader-election"  # the Role and RoleBinding
SECRETS = "memoserve-operator-secrets"  # the ClusterRole and ClusterRoleBinding for Secrets

# The operator's permissions, (apiGroup, resource) -> verbs. A change here is a deliberate change
# of what the operator may do (tests/e2e runs it with exactly this ClusterRole).
CHILD = frozenset({"get", "list", "watch", "create", "patch", "delete"})
EXPECTED_PERMISSIONS: dict[tuple[str, str], frozenset[str]] = {
    (GROUP, "inferenceservices"): frozenset({"get", "list", "watch", "patch"}),
    (GROUP, "inferenceservices/status"): frozenset({"patch"}),
    (GROUP, "inferenceservices/finalizers"): frozenset({"update"}),
    ("apps", "deployments"): CHILD,
    ("", "services"): CHILD,
    ("", "serviceaccounts"): CHILD,
    ("networking.k8s.io", "ingresses"): CHILD,
    ("networking.k8s.io", "networkpolicies"): CHILD,
    ("autoscaling", "horizontalpodautoscalers"): CHILD,
    ("policy", "poddisruptionbudgets"): CHILD,
    ("cloud.google.com", "backendconfigs"): CHILD,
    ("networking.gke.io", "managedcertificates"): CHILD,
    ("networking.gke.io", "healthcheckpolicies"): CHILD,
    ("networking.gke.io", "gcpbackendpolicies"): CHILD,
    ("gateway.networking.k8s.io", "gateways"): CHILD,
    ("gateway.networking.k8s.io", "httproutes"): CHILD,
    ("monitoring.googleapis.com", "podmonitorings"): CHILD,
    ("", "pods"): frozenset({"get", "list", "watch"}),
    ("", "events"): frozenset({"create", "patch"}),
    ("events.k8s.io", "events"): frozenset({"create", "patch"}),
    ("apiextensions.k8s.io", "customresourcedefinitions"): frozenset({"get", "list", "watch"}),
    ("", "namespaces"): frozenset({"list", "watch"}),
}
# Secrets apart (ClusterRole SECRETS), so that a site can bind them per namespace.
EXPECTED_SECRET_PERMISSIONS = {("", "secrets"): frozenset({"get", "create", "patch", "delete"})}


# --- rendering ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> list[Obj]:
    """The base's own objects: everything but the CRD, which crds/ contributes (tested apart)."""
    return render(BASE, omit=[CRDS])


@pytest.fixture(scope="module")
def gke() -> list[Obj]:
    return render(GKE, omit=[CRDS])


def one(objects: list[Obj], kind: str, name: str = NAME) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def test_base_installs_the_operator(base: list[Obj]) -> None:
    assert sorted((o["kind"], o["metadata"]["name"]) for o in base) == [
        ("ClusterRole", NAME),
        ("ClusterRole", SECRETS),
        ("ClusterRoleBinding", NAME),
        ("ClusterRoleBinding", SECRETS),
        ("ConfigMap", "memoserve-operator-config"),
        ("Deployment", NAME),
        ("Namespace", NAMESPACE),
        ("NetworkPolicy", NAME),
        ("PodDisruptionBudget", NAME),
        ("Role", LEADER_ELECTION),
        ("RoleBinding", LEADER_ELECTION),
        ("ServiceAccount", NAME),
    ]
    for obj in base:
        if obj["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert obj["metadata"]["namespace"] == NAMESPACE, object_id(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "memoserve"


def test_base_installs_the_crd_from_crds() -> None:
    if not (CRDS / "inferenceservice.yaml").exists():
        pytest.skip("crds/inferenceservice.yaml is not written yet (the CRD part of issue 3)")
    if not (CRDS / "kustomization.yaml").exists():
        pytest.fail(
            "crds/ needs a kustomization.yaml listing inferenceservice.yaml: manifests/base "
            "references the directory, because kustomize refuses files outside a kustomization"
        )
    objects = render(BASE)
    crd = one(objects, "CustomResourceDefinition", f"inferenceservices.{GROUP}")
    assert kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == (GROUP, "Namespaced")
    assert (spec["names"]["kind"], spec["names"]["plural"]) == (
        "InferenceService",
        "inferenceservices",
    )
    assert "misvc" in spec["names"].get("shortNames", [])
    assert "isvc" not in spec["names"].get("shortNames", [])
    # The ClusterRole grants inferenceservices/status: the served versions must have it.
    for version in spec["versions"]:
        if version["served"]:
            assert "status" in version.get("subresources", {}), version["name"]
    assert {object_id(o) for o in render(BASE, omit=[CRDS])} <= {object_id(o) for o in objects}


@pytest.mark.parametrize("directory", [BASE, GKE], ids=["base", "overlays/gke"])
def test_renderer_agrees_with_kubectl_kustomize(directory: Path, tmp_path: Path) -> None:
    # The kubectl that `make test` builds with the e2e control plane (build=False: a machine
    # without it fails here with the build script's message rather than building for minutes).
    kubectl = str(control_plane_binaries(build=False) / "kubectl")
    # A copy of the tree, so the comparison also runs while crds/ is still being written:
    # then crds/ is an empty kustomization (the CRD's own inclusion is tested above).
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    if (CRDS / "kustomization.yaml").exists():
        shutil.copytree(CRDS, tmp_path / "crds")
    else:
        (tmp_path / "crds").mkdir()
        (tmp_path / "crds" / "kustomization.yaml").write_text("resources: []\n")
    target = tmp_path / directory.relative_to(ROOT)
    printed = subprocess.run(
        [kubectl, "kustomize", str(target)], check=True, capture_output=True, text=True
    ).stdout
    expected = {object_id(o): o for o in yaml.safe_load_all(printed) if o}
    assert {object_id(o): o for o in render(target)} == expected


def test_renderer_refuses_what_it_does_not_understand(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\nconfigMapGenerator: [{name: b, literals: [x=1]}]\n"
    )
    with pytest.raises(RenderError, match="configMapGenerator"):
        render(tmp_path)
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "kustomization.yaml").write_text("resources: [../cm.yaml]\n")
    with pytest.raises(RenderError, match="outside"):
        render(inner)


@pytest.mark.parametrize(
    ("image", "rule", "expected"),
    [
        ("memoserve/operator:0.1.0", {"newTag": "0.2.0"}, "memoserve/operator:0.2.0"),
        ("memoserve/operator", {"newName": "r.example:5000/m/op"}, "r.example:5000/m/op"),
        ("memoserve/operator:0.1.0", {"newName": "r.example/op"}, "r.example/op:0.1.0"),
        ("memoserve/operator:0.1.0", {"digest": "sha256:ab"}, "memoserve/operator@sha256:ab"),
        ("other/operator:0.1.0", {"newTag": "9"}, "other/operator:0.1.0"),
    ],
)
def test_renderer_sets_images(
    tmp_path: Path, image: str, rule: dict[str, str], expected: str
) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(deployment))
    kustomization = {"resources": ["d.yaml"], "images": [{"name": "memoserve/operator", **rule}]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    [rendered] = render(tmp_path)
    assert rendered["spec"]["template"]["spec"]["containers"][0]["image"] == expected


# --- schemas --------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["base", "gke"])
def test_every_object_passes_the_kubernetes_schema(
    overlay: str, request: pytest.FixtureRequest
) -> None:
    objects: list[Obj] = request.getfixturevalue(overlay)
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert obj["kind"] in NO_SCHEMA_KINDS, f"no schema for {object_id(obj)}"
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{object_id(obj)}: {error.message} at {list(error.path)}")


def test_pod_monitoring_scrapes_the_metrics_port(gke: list[Obj]) -> None:
    monitor = one(gke, "PodMonitoring")
    assert monitor["apiVersion"] == "monitoring.googleapis.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    pod = one(gke, "Deployment")["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "interval", "path", "timeout"}
        assert endpoint["port"] in ports
        assert re.fullmatch(r"\d+s", endpoint["interval"])


# --- the Deployment -------------------------------------------------------------------------------


def operator_container(objects: list[Obj]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = one(objects, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    [container] = containers
    return container


def quantity(value: str | int) -> Decimal:
    """A Kubernetes resource quantity ("100m", "1", "256Mi") as a number."""
    parsed = parse_quantity(value)
    assert parsed is not None, f"unexpected quantity {value!r}"
    return parsed


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's env entries with a value (the downward API's are left out)."""
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_two_replicas_elect_a_leader(base: list[Obj]) -> None:
    """kopf runs standalone (no peering CRDs); the replicas elect a leader on a Lease."""
    spec = one(base, "Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = spec["template"]
    spread = {c["topologyKey"]: c for c in pod["spec"]["topologySpreadConstraints"]}
    on_nodes = spread["kubernetes.io/hostname"]
    assert (on_nodes["maxSkew"], on_nodes["whenUnsatisfiable"]) == (1, "DoNotSchedule")
    for constraint in spread.values():
        selector = constraint["labelSelector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items()
    downward = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in operator_container(base)["env"]
        if "valueFrom" in e
    }
    assert downward == DOWNWARD_ENV
    settings = pytest.importorskip("memoserve_operator.settings").OperatorSettings()
    assert settings.leader_election is True
    assert not any(o["apiVersion"].startswith(("kopf.dev/", "zalando.org/")) for o in base)
    assert not any(
        o["kind"] == "CustomResourceDefinition" and "kopfpeering" in o["metadata"]["name"]
        for o in base
    )


def test_operator_runs_memoserve_operator(base: list[Obj], gke: list[Obj]) -> None:
    deployment = one(base, "Deployment")
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    assert pod["spec"]["serviceAccountName"] == one(base, "ServiceAccount")["metadata"]["name"]
    assert pod["spec"].get("automountServiceAccountToken", True) is True
    container = operator_container(base)
    assert container["command"] == ["memoserve", "operator"]
    assert container["image"] == "memoserve/operator:0.1.0"
    assert operator_container(gke)["image"] == (
        "registry.example.com/my-project/memoserve/operator:0.1.0"
    )


def test_pod_meets_the_restricted_pod_security_standard(base: list[Obj]) -> None:
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field), field
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    allowed_volumes = {"emptyDir", "configMap", "secret", "projected", "downwardAPI"}
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= allowed_volumes, volume
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True
        assert not context.get("privileged")
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert all("hostPort" not in port for port in container.get("ports", []))
        # A read-only root needs somewhere to write temporary files.
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
    namespace = one(base, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_resources_are_requested_and_limited(base: list[Obj]) -> None:
    resources = operator_container(base)["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, resource


def test_probes_hit_kopf_liveness_endpoint(base: list[Obj]) -> None:
    container = operator_container(base)
    env = plain_env(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    liveness = urlsplit(env["MEMOSERVE_OPERATOR_LIVENESS_URL"])
    assert liveness.scheme == "http"
    assert liveness.hostname == "0.0.0.0"  # reachable by the kubelet, not only on loopback
    for probe in ("startupProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == liveness.path
        assert ports[http["port"]] == liveness.port
    assert ports["metrics"] == int(env["MEMOSERVE_OPERATOR_METRICS_PORT"])
    assert len(set(ports.values())) == len(ports)


# --- configuration --------------------------------------------------------------------------------


def test_configuration_names(base: list[Obj]) -> None:
    config = one(base, "ConfigMap", "memoserve-operator-config")
    assert set(config["data"]) == CONFIG_KEYS
    container = operator_container(base)
    assert container["envFrom"] == [{"configMapRef": {"name": "memoserve-operator-config"}}]
    assert {e["name"] for e in container["env"]} == POD_ENV | DOWNWARD_ENV.keys()
    assert not CONFIG_KEYS & POD_ENV
    for image_key in ("MEMOSERVE_OPERATOR_DEFAULT_IMAGE", "MEMOSERVE_OPERATOR_DEFAULT_GPU_IMAGE"):
        image = config["data"][image_key]
        assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+", image), image
        assert not image.endswith(":latest")


def test_operator_settings_read_every_name_the_manifests_set(
    base: list[Obj], gke: list[Obj]
) -> None:
    """Each MEMOSERVE_OPERATOR_* variable is a field of the operator's settings, and the values
    of the base and of the GKE overlay parse."""
    settings = pytest.importorskip("memoserve_operator.settings")
    fields = set(settings.OperatorSettings.model_fields)
    for objects in (base, gke):
        environ = dict(one(objects, "ConfigMap", "memoserve-operator-config")["data"])
        environ |= plain_env(operator_container(objects))
        unknown = sorted(
            name for name in environ if name.removeprefix(settings.ENV_PREFIX).lower() not in fields
        )
        assert not unknown, f"OperatorSettings has no field for {unknown}"
        parsed = settings.OperatorSettings.from_env(environ)
        assert parsed.default_image == environ["MEMOSERVE_OPERATOR_DEFAULT_IMAGE"]


def test_base_carries_placeholders_the_overlay_replaces(base: list[Obj], gke: list[Obj]) -> None:
    annotation = "iam.gke.io/gcp-service-account"
    base_config = one(base, "ConfigMap", "memoserve-operator-config")["data"]
    base_gsa = one(base, "ServiceAccount")["metadata"]["annotations"][annotation]
    assert (
        base_gsa
        == f"{NAME}@{base_config['MEMOSERVE_OPERATOR_GCP_PROJECT']}.iam.gserviceaccount.com"
    )

    config = one(gke, "ConfigMap", "memoserve-operator-config")["data"]
    project = config["MEMOSERVE_OPERATOR_GCP_PROJECT"]
    assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", project)  # a Google Cloud project ID
    assert re.fullmatch(r"[a-z]+-[a-z]+\d", config["MEMOSERVE_OPERATOR_GCP_REGION"])
    gsa = one(gke, "ServiceAccount")["metadata"]["annotations"][annotation]
    assert gsa == f"{NAME}@{project}.iam.gserviceaccount.com"
    # The patches merged into the base's objects, they did not replace them.
    assert set(config) == CONFIG_KEYS
    assert (
        one(gke, "ServiceAccount")["metadata"]["labels"]
        == one(base, "ServiceAccount")["metadata"]["labels"]
    )
    rendered = yaml.safe_dump_all(gke)
    assert "PROJECT_ID" not in rendered
    assert "REGION" not in rendered.replace("MEMOSERVE_OPERATOR_GCP_REGION", "")


# --- RBAC -----------------------------------------------------------------------------------------


def permissions(role: Obj) -> dict[tuple[str, str], frozenset[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames/URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return {key: frozenset(verbs) for key, verbs in granted.items()}


def cluster_permissions(base: list[Obj]) -> dict[tuple[str, str], frozenset[str]]:
    """What the operator's two ClusterRoles grant together."""
    return permissions(one(base, "ClusterRole")) | permissions(one(base, "ClusterRole", SECRETS))


def test_cluster_role_is_exactly_what_the_operator_uses(base: list[Obj]) -> None:
    assert permissions(one(base, "ClusterRole")) == EXPECTED_PERMISSIONS
    assert permissions(one(base, "ClusterRole", SECRETS)) == EXPECTED_SECRET_PERMISSIONS


@pytest.mark.parametrize("name", [NAME, SECRETS])
def test_cluster_role_has_no_wildcards_or_escalation(base: list[Obj], name: str) -> None:
    role = one(base, "ClusterRole", name)
    assert "aggregationRule" not in role
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert all("*" not in value for value in rule[field]), rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])


def test_cluster_role_writes_with_patch_and_reads_no_secret_en_masse(base: list[Obj]) -> None:
    granted = cluster_permissions(base)
    # Everything is written with PATCH (server-side apply); "update" only where kube demands it.
    assert {key for key, verbs in granted.items() if "update" in verbs} == {
        (GROUP, "inferenceservices/finalizers")
    }
    # Listing or watching Secrets cluster-wide would read every Secret in the cluster.
    assert not {"list", "watch"} & granted[("", "secrets")]
    assert not any(group == "rbac.authorization.k8s.io" for group, _ in granted)
    # The operator never creates or deletes the resources it serves; users do.
    assert not {"create", "delete"} & granted[(GROUP, "inferenceservices")]


APPLIED_CHILDREN = [
    ("apps", "deployments"),
    ("", "services"),
    ("", "serviceaccounts"),
    ("", "secrets"),
    ("networking.k8s.io", "ingresses"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("cloud.google.com", "backendconfigs"),
    ("networking.gke.io", "managedcertificates"),
    ("monitoring.googleapis.com", "podmonitorings"),
    ("networking.k8s.io", "networkpolicies"),
]


@pytest.mark.parametrize("child", APPLIED_CHILDREN, ids=lambda key: "/".join(key).strip("/"))
def test_server_side_apply_can_create_and_delete_the_child(
    base: list[Obj], child: tuple[str, str]
) -> None:
    # An apply that creates the object is authorised as create as well as patch.
    assert {"create", "patch", "delete"} <= cluster_permissions(base)[child]


def test_kopf_can_discover_and_report(base: list[Obj]) -> None:
    granted = permissions(one(base, "ClusterRole"))
    assert {"list", "watch"} <= granted[("apiextensions.k8s.io", "customresourcedefinitions")]
    assert {"list", "watch"} <= granted[("", "namespaces")]
    assert {"list", "watch", "patch"} <= granted[(GROUP, "inferenceservices")]
    assert "patch" in granted[(GROUP, "inferenceservices/status")]
    assert "create" in granted[("", "events")]


@pytest.mark.parametrize("name", [NAME, SECRETS])
def test_binding_grants_the_role_to_the_operator_service_account(
    base: list[Obj], name: str
) -> None:
    binding = one(base, "ClusterRoleBinding", name)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": one(base, "ClusterRole", name)["metadata"]["name"],
    }
    account = one(base, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


def test_leader_election_may_touch_its_own_lease_only(base: list[Obj]) -> None:
    """A namespaced Role, in the operator's namespace: create a Lease (create cannot be limited to
    a name), get and update the one named by the settings; no patch, list, watch or delete."""
    settings = pytest.importorskip("memoserve_operator.settings").OperatorSettings()
    role = one(base, "Role", LEADER_ELECTION)
    assert role["metadata"]["namespace"] == one(base, "Deployment")["metadata"]["namespace"]
    lease = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}
    assert role["rules"] == [
        lease | {"verbs": ["create"]},
        lease | {"resourceNames": [settings.lease_name], "verbs": ["get", "update"]},
    ]
    assert not any(resource == "leases" for _, resource in cluster_permissions(base))
    binding = one(base, "RoleBinding", LEADER_ELECTION)
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": LEADER_ELECTION,
    }
    account = one(base, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


# --- docs/gke.md ----------------------------------------------------------------------------------

GKE_DOC = ROOT / "docs" / "gke.md"


def test_gke_doc_binds_the_operator_account_the_manifests_use(gke: list[Obj]) -> None:
    text = GKE_DOC.read_text()
    account = one(gke, "ServiceAccount")
    meta = account["metadata"]
    assert f".svc.id.goog[{meta['namespace']}/{meta['name']}]" in text
    gsa = meta["annotations"]["iam.gke.io/gcp-service-account"]
    assert gsa.split("@")[0] in text  # the Google service account the doc creates
    for role in (
        "roles/redis.admin",
        "roles/storage.objectViewer",
        "roles/iam.workloadIdentityUser",
    ):
        assert role in text
    assert "--workload-pool" in text
    assert "nvidia-l4" in text
    assert "gpu-driver-version=" in text
    assert "kubectl get misvc" in text
    assert f"inferenceservices.{GROUP}" in text


def test_gke_doc_names_paths_that_exist() -> None:
    text = GKE_DOC.read_text()
    assert "kubectl apply --server-side -k manifests/overlays/gke" in text
    paths = re.findall(r"\bmanifests/(?:base|overlays/gke|argocd/[\w.-]+)", text)
    assert paths
    for path in paths:
        assert (ROOT / path).exists(), path
    # The sed in the doc must find what it replaces in the example overlay.
    overlay = "".join(p.read_text() for p in GKE.glob("*.yaml"))
    for placeholder in re.findall(r'-e "s\|([^|]+)\|', text):
        assert placeholder in overlay, placeholder


def strict(schema: Any) -> Any:
    """A CRD's structural schema as JSON Schema that also refuses unknown fields (the API server
    would prune them silently; in a doc they are typos)."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def test_gke_doc_inference_service_matches_the_crd() -> None:
    crd_file = CRDS / "inferenceservice.yaml"
    if not crd_file.exists():
        pytest.skip("crds/inferenceservice.yaml is not written yet (the CRD part of issue 3)")
    [crd] = [d for d in yaml.safe_load_all(crd_file.read_text()) if d]
    [version] = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema = strict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])
    heredocs = re.findall(r"<<EOF\n(.*?)\nEOF\n", GKE_DOC.read_text(), re.S)
    samples = {
        "NS": "ml-serving",
        "MODEL_BUCKET": "my-project-models",
        "SERVING_GSA": "memoserve-serving@my-project.iam.gserviceaccount.com",
        "CLUSTER": "memoserve",
    }
    services = []
    for heredoc in heredocs:
        text = re.sub(r"\$\{(\w+)\}", lambda m: samples[m[1]], heredoc)
        services += [
            d for d in yaml.safe_load_all(text) if d and d.get("kind") == "InferenceService"
        ]
    assert services, "docs/gke.md applies no InferenceService"
    for service in services:
        assert service["apiVersion"] == f"{GROUP}/{version['name']}"
        jsonschema.validate(service["spec"], schema)


def test_gke_doc_metric_settings_are_what_the_operator_builds() -> None:
    """Section 8's settings parse, and the metric names and selector keys the doc shows are the
    ones the operator writes into the HPAs."""
    settings = pytest.importorskip("memoserve_operator.settings")
    hpa = pytest.importorskip("memoserve_operator.builders.hpa")
    text = GKE_DOC.read_text()
    [added] = re.findall(r"<<EOF\n(  # docs/gke.md section 8.*?)\nEOF\n", text, re.S)
    environ = yaml.safe_load(added.replace("${CLUSTER}", "memoserve"))
    parsed = settings.OperatorSettings.from_env(environ)
    assert parsed.inflight_metric_name in text
    assert hpa.upstream_inflight_metric_name(parsed) in text
    resource = pytest.importorskip("memoserve_contract.resource.inferenceservice")
    isvc = resource.InferenceService.from_body(
        {"metadata": {"name": "ranker"}, "spec": {"model": {"uri": "/m", "format": "onnx"}}}
    )
    for key in hpa.service_series(isvc, parsed):
        assert f"{key}: " in text, key
