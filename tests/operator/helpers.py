"""Shared by the operator tests: data paths, fixed settings, InferenceServices, schema checks,
the endpoints golden inputs are rendered with."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import kubernetes_validate
import yaml

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.settings import OperatorSettings
from tests.support.gateway_crds import strict_schema

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
INVALID = sorted((DATA / "invalid").glob("*.yaml"))
GOLDEN_INPUTS = sorted((DATA / "input").glob("*.yaml"))
CRD_FILE = ROOT / "crds" / "inferenceservice.yaml"
KUBERNETES_VERSION = "1.30"

# Fixed, so that golden files do not change when the operator's defaults do.
SETTINGS = OperatorSettings(default_image="memoserve:test", default_gpu_image="memoserve:test-cuda")

# The endpoint a cache step would have learned, for golden inputs whose Redis the spec alone does
# not name (by file stem): what the Memorystore / Valkey / Redis Cluster API would answer.
GOLDEN_ENDPOINTS = {
    "valkey": RedisEndpoint(
        "10.0.0.5",
        6379,
        tls=True,
        ca_cert="-----BEGIN CERTIFICATE-----\nVALKEY-CA\n-----END CERTIFICATE-----\n",
        engine="valkey",
        auth="iam",
        cluster=True,
        shards=3,
        replicas_per_shard=1,
        node_addresses=("10.0.0.5", "10.0.0.6"),
    ),
    "redis-cluster": RedisEndpoint(
        "10.0.1.7",
        6379,
        engine="redis-cluster",
        auth="iam",
        cluster=True,
        shards=5,
        replicas_per_shard=2,
        node_addresses=("10.0.1.7", "10.0.1.8"),
    ),
}

# GKE's own CRDs: kubernetes-validate knows only built-in kinds.
GKE_SCHEMAS = {
    ("cloud.google.com/v1", "BackendConfig"): "backendconfig.json",
    ("networking.gke.io/v1", "ManagedCertificate"): "managedcertificate.json",
    ("monitoring.googleapis.com/v1", "PodMonitoring"): "podmonitoring.json",
}


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def expected_message(path: Path) -> str:
    """An invalid example's first line: ``# expect: MESSAGE``."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def make_isvc(**spec: Any) -> InferenceService:
    """InferenceService iris in namespace ml (uid uid-1); ``spec`` entries (camelCase) win."""
    body = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "uid-1"},
        "spec": {"model": {"uri": "gs://my-models/iris/", "format": "sklearn"}} | spec,
    }
    return InferenceService.from_body(body)


@cache
def _gke_schema(filename: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DATA / "schemas" / filename).read_text())
    return schema


def validate_object(obj: dict[str, Any]) -> None:
    """Refuse an object the API server (Kubernetes 1.30, strict fields) or GKE would refuse."""
    key = (obj["apiVersion"], obj["kind"])
    if key in GKE_SCHEMAS:
        jsonschema.validate(obj, _gke_schema(GKE_SCHEMAS[key]))
        return
    # The Gateway API's kinds and GKE's policies for it: their own CRDs' schemas.
    if (crd_schema := strict_schema(*key)) is not None:
        jsonschema.validate(obj, crd_schema)
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
