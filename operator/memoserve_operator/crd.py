"""The InferenceService CustomResourceDefinition, generated from the pydantic models.

``crds/inferenceservice.yaml`` is this module's output, committed so that ``kubectl apply -f
crds/`` and kustomize need no Python; a test fails when it is stale. Regenerate with::

    .venv/bin/python -m memoserve_operator.crd > crds/inferenceservice.yaml

Pydantic's JSON schema becomes a Kubernetes *structural* schema: ``$ref`` inlined, optional
fields' ``anyOf [X, null]`` collapsed to X (absent, never null), titles and ``default: null``
dropped, ``additionalProperties: false`` dropped (the API server prunes unknown fields itself).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from memoserve_contract.canary import CANARY_SUFFIX
from memoserve_contract.resource.fields import NAME_PATTERN
from memoserve_contract.resource.inferenceservice import InferenceServiceSpec
from memoserve_contract.resource.names import (
    API_VERSION,
    GROUP,
    KIND,
    NAME_MAX_LENGTH,
    PLURAL,
    SHORT_NAME,
    SINGULAR,
    VERSION,
)
from memoserve_contract.resource.status import InferenceServiceStatus

# Keys first in this order, so the YAML reads top-down like a hand-written schema.
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "maxItems",
    "maxProperties",
    "anyOf",
    "x-kubernetes-int-or-string",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
_RULE_KEY_ORDER = ("rule", "message", "fieldPath", "reason")

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "URL", "type": "string", "jsonPath": ".status.url"},
    {"name": "Replicas", "type": "string", "jsonPath": ".status.replicaSummary"},
    # State first (read at a glance), then engine, SHARDSxNODES and endpoint: cache_summary().
    {"name": "Cache", "type": "string", "jsonPath": ".status.cache.summary"},
    {"name": "Hit%", "type": "string", "jsonPath": ".status.cache.hitRatio"},
    # The canary's share of the requests (empty without spec.canary).
    {"name": "Canary%", "type": "integer", "jsonPath": ".spec.canary.trafficPercent"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.uri", "priority": 1},
    {"name": "GPU", "type": "string", "jsonPath": ".spec.gpu.type", "priority": 1},
]

# kubectl scale / KEDA write spec.replicas; it is used only while autoscaling is off (a CEL
# rule refuses it otherwise). status.selector lets an HPA or KEDA target the resource itself.
SCALE_SUBRESOURCE = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}


def structural(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema (with ``$defs``) as a Kubernetes structural schema."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    return _convert(schema, defs)


def _convert(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    node = dict(node)
    node.pop("$defs", None)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}  # the field's own description wins over the model's
    variants = node.get("anyOf", [])
    if {"type": "null"} in variants:
        (only,) = [v for v in variants if v != {"type": "null"}]
        del node["anyOf"]
        node = {**_convert(only, defs), **node}
    node.pop("title", None)
    if node.get("default", ...) is None:
        del node["default"]
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    for key in ("properties",):
        if key in node:
            node[key] = {name: _convert(sub, defs) for name, sub in node[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), Mapping):
            node[key] = _convert(node[key], defs)
    if "x-kubernetes-validations" in node:
        node["x-kubernetes-validations"] = [
            _ordered(rule, _RULE_KEY_ORDER) for rule in node["x-kubernetes-validations"]
        ]
    return _ordered(node, _KEY_ORDER)


def _ordered(node: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    first = {key: node[key] for key in order if key in node}
    return first | {key: node[key] for key in sorted(node) if key not in first}


# NAME-model must fit the 63 characters of a Service's name.
SPLIT_NAME_MAX_LENGTH = NAME_MAX_LENGTH - len("-model")
# NAME-canary likewise.
CANARY_NAME_MAX_LENGTH = NAME_MAX_LENGTH - len(CANARY_SUFFIX)


def open_api_schema() -> dict[str, Any]:
    """The CRD's openAPIV3Schema."""
    return {
        "description": "A machine-learning model served on GKE, every answer cached in Redis.",
        "type": "object",
        "required": ["spec"],
        # A root rule: the only place CEL can see metadata.name (and only name, generateName).
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.spec.front) || !self.spec.front.enabled"
                f" || size(self.metadata.name) <= {SPLIT_NAME_MAX_LENGTH}",
                "message": f"metadata.name must be at most {SPLIT_NAME_MAX_LENGTH} characters "
                "with spec.front.enabled (the model tier is NAME-model)",
                "fieldPath": ".metadata.name",
            },
            {
                "rule": "!has(self.spec.canary)"
                f" || size(self.metadata.name) <= {CANARY_NAME_MAX_LENGTH}",
                "message": f"metadata.name must be at most {CANARY_NAME_MAX_LENGTH} characters "
                f"with spec.canary (the canary is NAME{CANARY_SUFFIX})",
                "fieldPath": ".metadata.name",
            },
        ],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "maxLength": NAME_MAX_LENGTH,
                        "pattern": NAME_PATTERN,
                    }
                },
            },
            "spec": structural(InferenceServiceSpec.model_json_schema(by_alias=True)),
            "status": structural(InferenceServiceStatus.model_json_schema(by_alias=True)),
        },
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "memoserve",
                "app.kubernetes.io/part-of": "memoserve",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
                "categories": ["memoserve", "all"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": open_api_schema()},
                    "subresources": {"status": {}, "scale": dict(SCALE_SUBRESOURCE)},
                    "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS),
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = (
        f"# {API_VERSION} {KIND}: generated by `python -m memoserve_operator.crd`; do not edit.\n"
    )
    body: str = yaml.safe_dump(crd(), sort_keys=False, width=1000)
    return header + body


def main() -> None:
    sys.stdout.write(crd_yaml())


if __name__ == "__main__":
    main()
