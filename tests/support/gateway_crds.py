"""The Gateway API's CRDs and GKE's Gateway policy CRDs, as their projects publish them.

- Gateway API (standard channel): from the ``sigs.k8s.io/gateway-api`` Go module, fetched into
  the Go module cache by scripts/gateway-api-crds.sh.
- HealthCheckPolicy and GCPBackendPolicy (networking.gke.io/v1): from GoogleCloudPlatform/
  gke-gateway-api's config/crd at a pinned commit, kept in a cache outside the repository with
  their licence and source by scripts/gke-gateway-crds.sh.

The e2e control plane installs them (the API server then judges every rendered object with the
real schemas and CEL rules), and the golden tests check rendered objects against their
OpenAPI schemas (``strict_schema``: unknown fields refused, as kubectl's strict validation).
Missing files are a failure naming the script to run (``make test`` runs both), never a skip.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_API_SCRIPT = ROOT / "scripts" / "gateway-api-crds.sh"
GKE_SCRIPT = ROOT / "scripts" / "gke-gateway-crds.sh"
GKE_FILES = (
    "networking.gke.io_healthcheckpolicies.yaml",
    "networking.gke.io_gcpbackendpolicies.yaml",
)


class CrdsMissing(RuntimeError):
    """A script could not provide the CRDs; the message says which and why."""


def _directory(script: Path) -> Path:
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CrdsMissing(f"{script.name} failed ({done.returncode}): {done.stderr[-1500:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@cache
def gateway_crds() -> tuple[dict[str, Any], ...]:
    """Every CRD: the Gateway API's standard channel, then GKE's two policies."""
    files = sorted(_directory(GATEWAY_API_SCRIPT).glob("*.yaml"))
    gke = _directory(GKE_SCRIPT)
    files += [gke / name for name in GKE_FILES]
    documents = [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc]
    return tuple(doc for doc in documents if doc.get("kind") == "CustomResourceDefinition")


@cache
def strict_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The OpenAPI schema of ``kind`` at ``api_version`` from its CRD, as a JSON schema that
    refuses unknown fields; None if no CRD here defines it."""
    group, _, version = api_version.rpartition("/")
    for crd in gateway_crds():
        spec = crd["spec"]
        if spec["group"] != group or spec["names"]["kind"] != kind:
            continue
        for served in spec["versions"]:
            if served["name"] == version:
                return _strict(served["schema"]["openAPIV3Schema"])
    return None


def _strict(node: Any, branch: bool = False) -> Any:
    """``node`` with unknown fields refused wherever it lists its fields, except in the branches
    of a oneOf / anyOf / allOf (partial views of the same object, each listing a few)."""
    if isinstance(node, list):
        return [_strict(item, branch) for item in node]
    if not isinstance(node, dict):
        return node
    strict = {
        key: _strict(value, key in ("oneOf", "anyOf", "allOf")) for key, value in node.items()
    }
    if "properties" in node and not branch and not node.get("x-kubernetes-preserve-unknown-fields"):
        strict.setdefault("additionalProperties", False)
    return strict
