"""Golden files: an InferenceService in data/input/, the exact objects it must produce in
data/output/. The tests only compare; after an intended change, rewrite them with the command of
their own and review the diff (golden.py):

    make golden    # = .venv/bin/python -m tests.operator.golden --update

Every object (golden or rendered from manifests/examples) must also pass the Kubernetes 1.30
OpenAPI schemas in strict mode, or for GKE's CRDs the schemas in data/schemas/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from memoserve_operator.builders import build_all
from memoserve_operator.render import parse, render, to_yaml
from tests.operator.golden import COMMAND, build, output_of
from tests.operator.helpers import (
    DATA,
    EXAMPLES,
    GOLDEN_ENDPOINTS,
    GOLDEN_INPUTS,
    SETTINGS,
    load,
    validate_object,
)


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    expected = output_of(path)
    assert to_yaml(build(path)) == expected.read_text(), (
        f"{expected} is not what the builders make: if the change is intended, run {COMMAND} "
        "and review the diff"
    )


def test_tests_never_rewrite_golden_files() -> None:
    """UPDATE_GOLDEN=1 once made the tests rewrite the files and pass; it is the command now."""
    assert "UPDATE_GOLDEN" not in os.environ, f"UPDATE_GOLDEN is gone: run {COMMAND}"


def test_every_golden_output_has_an_input() -> None:
    inputs = {p.name for p in GOLDEN_INPUTS}
    outputs = {p.name for p in (DATA / "output").glob("*.yaml")}
    assert inputs
    assert outputs == inputs


def _rendered_objects() -> list[object]:
    found: list[object] = []
    for path in GOLDEN_INPUTS:  # what test_golden compares with the output files
        for obj in build(path):
            found.append(
                pytest.param(obj, id=f"{path.stem}/{obj['kind']}/{obj['metadata']['name']}")
            )
    for path in EXAMPLES:
        for obj in yaml.safe_load_all(render(path, SETTINGS)):
            found.append(
                pytest.param(obj, id=f"example-{path.stem}/{obj['kind']}/{obj['metadata']['name']}")
            )
    return found


@pytest.mark.parametrize("obj", _rendered_objects())
def test_every_object_passes_its_schema(obj: dict[str, object]) -> None:
    validate_object(obj)


def test_schema_check_is_strict() -> None:
    """The check refuses an unknown field, for built-in kinds and GKE's alike."""
    import jsonschema  # type: ignore[import-untyped]  # no stubs installed
    import kubernetes_validate

    objects = build_all(parse(load(GOLDEN_INPUTS[0])), SETTINGS)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(deployment)
    backend = {
        "apiVersion": "cloud.google.com/v1",
        "kind": "BackendConfig",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"healthCheck": {"requestPth": "/"}},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate_object(backend)
    # GKE's Gateway policies (our schemas): a misspelled field, and a port without the
    # portSpecification that uses it.
    gateway_objects = build_all(parse(load(DATA / "input" / "gateway-shared.yaml")), SETTINGS)
    policy = next(o for o in gateway_objects if o["kind"] == "HealthCheckPolicy")
    validate_object(policy)
    check = policy["spec"]["default"]["config"]["httpHealthCheck"]
    check["requestPth"] = check.pop("requestPath")
    with pytest.raises(jsonschema.ValidationError, match="requestPth"):
        validate_object(policy)
    check["requestPath"] = check.pop("requestPth")
    del check["portSpecification"]
    with pytest.raises(jsonschema.ValidationError, match="portSpecification"):
        validate_object(policy)


def test_every_golden_endpoint_has_an_input() -> None:
    assert set(GOLDEN_ENDPOINTS) <= {p.stem for p in GOLDEN_INPUTS}
