"""The API server itself admits every example and refuses every invalid one, for the reason its
first line names: the CRD's OpenAPI schema, enums and CEL rules as a cluster runs them. It also
admits every boundary example (tests/operator/data/boundary: min == max, a name of the longest
length allowed), so that a comparison relaxed or tightened by one fails here too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import EXAMPLES, ISVC
from tests.operator.helpers import BOUNDARY, INVALID, expected_message
from tests.support.controlplane import ControlPlane


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_applies(control_plane: ControlPlane, namespace: str, path: Path) -> None:
    applied = control_plane.kubectl("apply", "-n", namespace, "-f", str(path), "-o", "name")
    name = applied.stdout.strip().rsplit("/", 1)[-1]
    stored = control_plane.get(ISVC, name, "-n", namespace)
    assert stored["spec"]["model"]["uri"]
    control_plane.kubectl("delete", ISVC, name, "-n", namespace, "--wait=false")


@pytest.mark.parametrize("path", BOUNDARY, ids=lambda p: p.stem)
def test_every_boundary_example_applies(
    control_plane: ControlPlane, namespace: str, path: Path
) -> None:
    applied = control_plane.kubectl("apply", "-n", namespace, "-f", str(path), check=False)
    assert applied.returncode == 0, f"the API server refused {path.name}: {applied.stderr}"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_every_invalid_example_is_refused_for_its_reason(
    control_plane: ControlPlane, namespace: str, path: Path
) -> None:
    refused = control_plane.kubectl("apply", "-n", namespace, "-f", str(path), check=False)
    assert refused.returncode != 0, "the API server accepted an invalid InferenceService"
    error = refused.stderr
    field, _, message = expected_message(path).partition(": ")
    if path.stem.startswith("cel-"):
        # The API server quotes the rule's own message (x-kubernetes-validations[].message).
        assert message in error, error
    elif path.stem.startswith("enum-"):
        assert f"{field}: Unsupported value" in error, error
    elif path.stem == "schema-unknown-field":
        assert f'unknown field "{field}"' in error, error
    else:
        assert field in error, error
        assert "Invalid value" in error, error
    listed = control_plane.get(ISVC, "-n", namespace)
    assert listed["items"] == [], "nothing of a refused apply may be stored"
