"""The CRD: generated from the models and committed; its schema and CEL rules accept every
example and refuse every invalid one, each for the reason it names; every comparison in a rule is
pinned at its boundary (an example flips when ``<=`` becomes ``<``, ``>`` becomes ``>=``)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import pytest
import yaml

from memoserve_contract.resource.inferenceservice import InferenceServiceSpec
from memoserve_operator import cel
from memoserve_operator.crd import crd, crd_yaml, open_api_schema
from memoserve_operator.render import parse
from tests.operator.helpers import (
    BOUNDARY,
    CRD_FILE,
    EXAMPLES,
    GOLDEN_INPUTS,
    INVALID,
    boundary_message,
    expected_message,
    load,
)


def test_committed_crd_is_up_to_date() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), (
        "crds/inferenceservice.yaml is stale: "
        "run .venv/bin/python -m memoserve_operator.crd > crds/inferenceservice.yaml"
    )


def test_names_and_subresources() -> None:
    spec = crd()["spec"]
    assert spec["group"] == "serving.memoserve.dev"
    assert spec["names"]["kind"] == "InferenceService"
    assert spec["names"]["plural"] == "inferenceservices"
    assert spec["names"]["shortNames"] == ["misvc"]  # never KServe's "isvc"
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Ready", "URL", "Replicas", "Cache", "Hit%", "Canary%", "Age", "Model", "GPU",
    ]  # fmt: skip
    assert columns["Hit%"]["jsonPath"] == ".status.cache.hitRatio"
    assert columns["Canary%"]["jsonPath"] == ".spec.canary.trafficPercent"
    # state, engine, shards and endpoint at a glance (cache_summary())
    assert columns["Cache"]["jsonPath"] == ".status.cache.summary"
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert [n for n, c in columns.items() if c.get("priority") == 1] == ["Model", "GPU"]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_schema_is_structural() -> None:
    """What the API server insists on: a type everywhere, no refs, no nullable unions."""
    schema = open_api_schema()
    for node in _walk(schema["properties"]["spec"]):
        assert "$ref" not in node
        assert "title" not in node
        assert node.get("additionalProperties") is not False
        assert "exclusiveMinimum" not in node
        assert "exclusiveMaximum" not in node
        if "properties" in node or "items" in node:
            assert node.get("type") in ("object", "array")
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True


def _rules() -> list[dict[str, str]]:
    return [
        rule
        for node in _walk(open_api_schema())
        for rule in node.get("x-kubernetes-validations", [])
        if isinstance(rule, dict) and "rule" in rule
    ]


def _valid_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, load(p)) for p in [*EXAMPLES, *GOLDEN_INPUTS, *BOUNDARY]]


@pytest.mark.parametrize(("name", "document"), _valid_documents(), ids=lambda v: str(v)[:40])
def test_valid_documents_pass_the_openapi_schema(name: str, document: dict[str, Any]) -> None:
    jsonschema.validate(document, open_api_schema())


@pytest.mark.parametrize(("name", "document"), _valid_documents(), ids=lambda v: str(v)[:40])
def test_valid_documents_pass_every_cel_rule(name: str, document: dict[str, Any]) -> None:
    isvc = parse(document)
    defaulted = {
        "metadata": {"name": isvc.name},
        "spec": isvc.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    assert cel.violations(open_api_schema(), defaulted) == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_examples_are_refused_for_their_reason(path: Path) -> None:
    document = load(path)
    message = expected_message(path)
    validator = jsonschema.Draft202012Validator(_strict(open_api_schema()))
    schema_errors = list(validator.iter_errors(document))
    if path.stem.startswith("cel-"):
        # Only the rule refuses it: the OpenAPI schema alone would let it through.
        assert schema_errors == []
        isvc_spec = document["spec"]
        defaulted = {"metadata": document["metadata"], "spec": _defaulted(isvc_spec)}
        broken = [str(v) for v in cel.violations(open_api_schema(), defaulted)]
        assert broken == [message]
    else:
        assert schema_errors, "the API server's schema check must refuse it too"


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as kubectl's default strict field validation applies it: unknown fields in the
    spec are errors (the API server would otherwise prune them)."""
    node = dict(schema)
    if "properties" in node:
        node["properties"] = {k: _strict(v) for k, v in node["properties"].items()}
        if "metadata" not in node["properties"]:
            node["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _strict(node[key])
    return node


def _defaulted(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec with the schema's defaults, as the API server has it when rules run."""
    dumped: dict[str, Any] = InferenceServiceSpec.model_validate(spec).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return dumped


def test_every_cel_rule_has_an_example_it_refuses() -> None:
    covered = {expected_message(p).split(": ", 1)[1] for p in INVALID if p.stem.startswith("cel-")}
    messages = {rule["message"] for rule in _rules()}
    assert messages
    assert messages <= covered, f"rules without an invalid example: {messages - covered}"


def test_every_enum_has_an_example_it_refuses() -> None:
    enums = {
        tuple(node["enum"])
        for node in _walk(open_api_schema()["properties"]["spec"])
        if "enum" in node
    }
    refused = set()
    for path in INVALID:
        if path.stem.startswith("enum-"):
            for error in jsonschema.Draft202012Validator(open_api_schema()).iter_errors(load(path)):
                if error.validator == "enum":
                    refused.add(tuple(error.validator_value))
    assert enums == refused


# A comparison in a rule, and the mutant that flips its verdict where both sides are equal.
COMPARISON = re.compile(r" (<=|>=|<|>) ")
AT_EQUALITY = {"<=": "<", "<": "<=", ">=": ">", ">": ">="}


def _as_the_api_server_sees_it(document: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": document["metadata"], "spec": _defaulted(document["spec"])}


def _only_rule(schema: dict[str, Any], index: int, position: int, rule: str) -> dict[str, Any]:
    """``schema`` with one rule left (the ``position``-th of the ``index``-th node that has
    rules, in ``_walk``'s order), its text replaced by ``rule``."""
    kept = copy.deepcopy(schema)
    nodes = [node for node in _walk(kept) if "x-kubernetes-validations" in node]
    for number, node in enumerate(nodes):
        rules = node.pop("x-kubernetes-validations")
        if number == index:
            node["x-kubernetes-validations"] = [rules[position] | {"rule": rule}]
    return kept


def _mutants() -> Iterator[tuple[str, int, int, str, str]]:
    """(message, node index, rule position, rule, mutant) for every comparison in every rule."""
    nodes = [node for node in _walk(open_api_schema()) if "x-kubernetes-validations" in node]
    for index, node in enumerate(nodes):
        for position, rule in enumerate(node["x-kubernetes-validations"]):
            for found in COMPARISON.finditer(rule["rule"]):
                start, end = found.span(1)
                mutant = rule["rule"][:start] + AT_EQUALITY[found[1]] + rule["rule"][end:]
                yield rule["message"], index, position, rule["rule"], mutant


def test_every_comparison_rule_is_pinned_at_its_boundary() -> None:
    """Relaxing or tightening a comparison by one (``<=`` to ``<``) changes the verdict on some
    example: a valid or boundary one now refused, or an invalid one now accepted. The API server
    runs the same examples (tests/e2e/test_admission.py)."""
    documents = [
        (path, _as_the_api_server_sees_it(load(path)))
        for path in [*EXAMPLES, *GOLDEN_INPUTS, *BOUNDARY, *INVALID]
        if not path.stem.startswith(("enum-", "schema-"))
    ]
    schema, unpinned = open_api_schema(), []
    for message, index, position, rule, mutant in _mutants():
        original = _only_rule(schema, index, position, rule)
        mutated = _only_rule(schema, index, position, mutant)
        flipped = [
            path.name
            for path, document in documents
            if bool(cel.violations(original, document)) != bool(cel.violations(mutated, document))
        ]
        if not flipped:
            unpinned.append(f"{mutant!r} ({message})")
    assert list(_mutants()), "no comparison rules found: the pattern no longer matches"
    assert not unpinned, f"add a boundary or invalid example that these mutants fail: {unpinned}"


@pytest.mark.parametrize("path", BOUNDARY, ids=lambda p: p.stem)
def test_boundary_examples_sit_at_the_edge_of_the_rule_they_name(path: Path) -> None:
    """Accepted as they are, refused by the named rule's mutant (each is at its edge)."""
    document = _as_the_api_server_sees_it(load(path))
    assert cel.violations(open_api_schema(), document) == []
    mutants = [m for m in _mutants() if m[0] == boundary_message(path)]
    assert mutants, f"{path.name} names no comparison rule"
    assert any(
        cel.violations(_only_rule(open_api_schema(), index, position, mutant), document)
        for _, index, position, _, mutant in mutants
    )


@pytest.mark.parametrize(
    ("rule", "value", "holds"),
    [
        (
            "!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            {"minReplicas": 1},
            True,
        ),
        (
            "!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            {"minReplicas": 2, "maxReplicas": 2},
            True,
        ),
        (
            "!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            {"minReplicas": 3, "maxReplicas": 2},
            False,
        ),
        ("self.missing > 1", {}, False),  # a runtime error refuses, as in the API server
    ],
)
def test_cel_evaluation(rule: str, value: dict[str, Any], holds: bool) -> None:
    assert cel.holds(rule, value) is holds


def test_model_uri_rule() -> None:
    # spec.model's and spec.canary.model's (one ModelSpec): the same rule twice.
    (rule,) = {r["rule"] for r in _rules() if r.get("fieldPath") == ".uri"}
    for good in ["gs://my-models/iris/", "gs://abc", "gs://a.b-c_d/x/y.onnx", "/opt/models/m.onnx"]:
        assert cel.holds(rule, {"uri": good}), good
    for bad in ["s3://b/x", "gs://", "gs://ab", "gs://Bucket/x", "models/iris", "/", "http://x/y"]:
        assert not cel.holds(rule, {"uri": bad}), bad


def test_crd_yaml_parses_back() -> None:
    assert yaml.safe_load(crd_yaml()) == crd()
