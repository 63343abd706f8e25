"""charts/memoserve-operator: generated from the kustomize manifests (and current), the same
objects as ``kustomize build manifests/base`` with the default values, lint-clean, and each
value doing what values.yaml says (rendered by the real helm, built from its Go module)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from memoserve_operator.settings import ENV_PREFIX, OperatorSettings
from tests.helm.chart_templates import BASE, generated
from tests.helm.helm_tool import CHART, NAMESPACE, ROOT, helm, helm_binary, rendered
from tests.operator.kustomize_render import Obj, object_id, render

NAME = "memoserve-operator"


@pytest.fixture(scope="module")
def binary() -> Path:
    return helm_binary()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-home")


def one(objects: list[Obj], kind: str, name: str = NAME) -> Obj:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


# The chart's files written by hand; every other one is generated from the kustomize manifests.
HANDWRITTEN = {
    "Chart.yaml",
    "values.yaml",
    "values-gke.yaml",
    "templates/_helpers.tpl",
    "templates/NOTES.txt",
    "templates/secrets-rolebindings.yaml",
    "crds/inferenceservice.yaml",  # a symbolic link to crds/ (test_crd_is_in_crds_not_templates)
}


def test_generated_files_are_current() -> None:
    files = generated()
    for path, text in files.items():
        assert path.read_text() == text, f"{path} is stale: python -m tests.helm.chart_templates"
    present = {str(p.relative_to(CHART)) for p in CHART.rglob("*") if p.is_file()}
    expected = HANDWRITTEN | {str(p.relative_to(CHART)) for p in files}
    assert present == expected, "a chart file neither generated nor listed as written by hand"


def test_default_values_render_what_kustomize_builds(binary: Path, home: Path) -> None:
    """Every object and every field, but the Namespace (Helm's --create-namespace makes it)."""
    kustomize = {object_id(o): o for o in render(BASE) if o["kind"] != "Namespace"}
    chart = {object_id(o): o for o in rendered(binary, home)}
    assert sorted(chart) == sorted(kustomize)
    for key, obj in chart.items():
        assert obj == kustomize[key], key


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--set", "leaderElection.enabled=false", "--set", "replicas=1"),
        ("--values", str(CHART / "values-gke.yaml")),
    ],
    ids=["defaults", "no-leader-election", "gke"],
)
def test_helm_lint(binary: Path, home: Path, args: tuple[str, ...]) -> None:
    done = helm(binary, "lint", "--strict", str(CHART), *args, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_every_setting_in_values_is_an_operator_setting() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    fields = set(OperatorSettings.model_fields)
    for key in values["settings"]:
        assert re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower() in fields, key


def _environ(objects: list[Obj]) -> dict[str, str]:
    """What the operator's container sees: its ConfigMap (envFrom) and its plain env."""
    environ = dict(one(objects, "ConfigMap", f"{NAME}-config")["data"])
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    environ |= {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return {key: value for key, value in environ.items() if key.startswith(ENV_PREFIX)}


def _validate(objects: list[Obj]) -> None:
    for obj in objects:
        if obj["kind"] not in ("PodMonitoring", "CustomResourceDefinition"):
            kubernetes_validate.validate(obj, "1.30", strict=True)


def test_values_set_what_they_say(binary: Path, home: Path) -> None:
    objects = rendered(
        binary,
        home,
        "image.repository=registry.example.com/p/memoserve/operator",
        "image.digest=sha256:" + "a" * 64,
        "replicas=1",
        "leaderElection.enabled=false",
        r"settings.namespaces=team-a\,team-b",
        "settings.resyncSeconds=600",
        "settings.podMonitoring=true",
        "rbac.secretsRoleBindingsPerNamespace=true",
        "metrics.port=9100",
        "metrics.podMonitoring=true",
        "resources.limits.memory=1Gi",
        "serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=op@p.iam.gserviceaccount.com",
    )
    _validate(objects)
    deployment = one(objects, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/p/memoserve/operator@sha256:" + "a" * 64
    assert deployment["spec"]["replicas"] == 1
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == 9100
    settings = OperatorSettings.from_env(_environ(objects))
    assert settings.namespaces == ("team-a", "team-b")
    assert (settings.resync_seconds, settings.pod_monitoring) == (600, True)
    assert (settings.leader_election, settings.metrics_port) == (False, 9100)
    kinds = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects}
    # Namespace scope: the Secrets role is bound in the watched namespaces only.
    assert ("ClusterRoleBinding", f"{NAME}-secrets", None) not in kinds
    assert {("RoleBinding", f"{NAME}-secrets", ns) for ns in ("team-a", "team-b")} <= kinds
    assert not [o for o in objects if o["metadata"]["name"] == f"{NAME}-leader-election"]
    monitoring = one(objects, "PodMonitoring")
    assert monitoring["metadata"]["namespace"] == NAMESPACE
    assert monitoring["spec"]["endpoints"][0]["port"] == "metrics"
    account = one(objects, "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "op@p.iam.gserviceaccount.com"
    }


def test_lease_name_is_granted_and_configured(binary: Path, home: Path) -> None:
    objects = rendered(binary, home, "leaderElection.leaseName=team-operator")
    role = one(objects, "Role", f"{NAME}-leader-election")
    assert [r["resourceNames"] for r in role["rules"] if "resourceNames" in r] == [
        ["team-operator"]
    ]
    settings = OperatorSettings.from_env(_environ(objects))
    assert (settings.leader_election, settings.lease_name) == (True, "team-operator")


def test_secrets_per_namespace_needs_the_namespaces(binary: Path, home: Path) -> None:
    done = helm(
        binary,
        "template",
        str(CHART),
        "--set",
        "rbac.secretsRoleBindingsPerNamespace=true",
        home=home,
    )
    assert done.returncode != 0
    assert "needs settings.namespaces" in done.stderr


def _crd(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [crd] = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    return crd


def test_crd_is_in_crds_not_templates(binary: Path, home: Path) -> None:
    """Helm installs crds/ before the templates and never upgrades or deletes it (so an
    uninstall keeps every InferenceService); docs/install.md says how to upgrade it. The chart's
    CRD is the repository's, through a symbolic link: no copy to keep current."""
    link = CHART / "crds" / "inferenceservice.yaml"
    assert link.is_symlink()
    assert link.resolve() == ROOT / "crds" / "inferenceservice.yaml"
    assert not list((CHART / "templates").glob("*crd*"))
    done = helm(binary, "template", str(CHART), home=home)  # without --include-crds
    assert done.returncode == 0, done.stderr
    assert "CustomResourceDefinition" not in done.stdout
    assert (
        _crd(rendered(binary, home))["metadata"]["name"]
        == "inferenceservices.serving.memoserve.dev"
    )


def test_gke_values_render_what_the_gke_overlay_builds(binary: Path, home: Path) -> None:
    overlay = ROOT / "manifests" / "overlays" / "gke"
    kustomize = {object_id(o): o for o in render(overlay) if o["kind"] != "Namespace"}
    values = CHART / "values-gke.yaml"
    chart = {object_id(o): o for o in rendered(binary, home, values_file=values)}
    assert sorted(chart) == sorted(kustomize)
    for key, obj in chart.items():
        assert obj == kustomize[key], key
