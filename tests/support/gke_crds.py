"""CustomResourceDefinitions for the GKE kinds the operator writes, for the e2e control plane.

A GKE cluster has these CRDs; a bare API server does not. Their schemas are not invented here:
each CRD's ``spec`` schema is derived from the JSON schema the golden-file tests already hold
(tests/operator/data/schemas), turned into a structural OpenAPI schema (``const`` becomes a
one-value ``enum``; ``additionalProperties: false`` is dropped, because a structural schema
prunes, and kubectl's strict field validation refuses, unknown fields anyway; ``dependentSchemas``
is dropped, because a CRD cannot say it: a schema that uses it states the same rule for the API
server as ``x-kubernetes-validations``, which the JSON-schema check ignores).

Why our own schemas, not GKE's CRD files: no file fetched from another project may be committed,
and GKE's CRDs are in no Go module the module proxy serves (the Gateway API's own CRDs are:
tests/support/gateway_crds.py). Each schema names the Google documentation it was written from.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[1] / "operator" / "data" / "schemas"

# (group, version, kind, plural, schema file)
GKE_KINDS = (
    ("cloud.google.com", "v1", "BackendConfig", "backendconfigs", "backendconfig.json"),
    (
        "networking.gke.io",
        "v1",
        "ManagedCertificate",
        "managedcertificates",
        "managedcertificate.json",
    ),
    ("monitoring.googleapis.com", "v1", "PodMonitoring", "podmonitorings", "podmonitoring.json"),
    (
        "networking.gke.io",
        "v1",
        "HealthCheckPolicy",
        "healthcheckpolicies",
        "healthcheckpolicy.json",
    ),
    ("networking.gke.io", "v1", "GCPBackendPolicy", "gcpbackendpolicies", "gcpbackendpolicy.json"),
)

# JSON-schema keywords a CRD's schema has no place for (see the module's docstring).
JSON_SCHEMA_ONLY = ("$schema", "$comment", "title", "dependentSchemas")


def structural(schema: Any) -> Any:
    """A JSON schema node as a Kubernetes structural schema node."""
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "anyOf" in schema:  # alternatives of different shapes: keep the object, skip the check
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    node: dict[str, Any] = {}
    for key, value in schema.items():
        if key in JSON_SCHEMA_ONLY or (key == "additionalProperties" and value is False):
            continue
        if key == "const":
            node["enum"] = [value]
        else:
            node[key] = structural(value)
    if "enum" in node:  # a structural schema states every node's type
        node.setdefault("type", _json_type(node["enum"][0]))
    return node


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string"}[type(value)]


@cache
def _spec_schema(filename: str) -> dict[str, Any]:
    document = json.loads((SCHEMAS / filename).read_text())
    spec: dict[str, Any] = structural(document["properties"]["spec"])
    return spec


def gke_crds() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                "versions": [
                    {
                        "name": version,
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": _spec_schema(filename),
                                    "status": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
        for group, version, kind, plural, filename in GKE_KINDS
    ]
