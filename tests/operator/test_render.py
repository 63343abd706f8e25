"""`memoserve render`: the library function and the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from memoserve_operator.render import RenderError, render
from tests.operator.helpers import EXAMPLES, INVALID, ROOT, SETTINGS, expected_message

MEMOSERVE = str(Path(sys.executable).parent / "memoserve")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_input_is_one_line_naming_the_problem(path: Path) -> None:
    with pytest.raises(RenderError) as caught:
        render(path, SETTINGS)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f'{path}: InferenceService "')
    assert expected_message(path) in message


def test_several_services_in_one_file(tmp_path: Path) -> None:
    both = tmp_path / "both.yaml"
    both.write_text("---\n".join(p.read_text() for p in EXAMPLES[:2]) + "---\n")
    objects = list(yaml.safe_load_all(render(both, SETTINGS, namespace="team-a")))
    instances = {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in objects}
    assert instances == {yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES[:2]}
    assert len(instances) == 2
    assert {o["metadata"]["namespace"] for o in objects} == {"team-a"}
    assert all("ownerReferences" not in o["metadata"] for o in objects)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no InferenceService in the input"),
        ("kind: [unclosed\n", "invalid YAML at line"),
        ("- a list\n", "must be a mapping"),
        ("apiVersion: v1\nkind: ConfigMap\n", "expected apiVersion serving.memoserve.dev/v1alpha1"),
        (
            "apiVersion: serving.memoserve.dev/v1alpha1\nkind: InferenceService\n"
            "metadata: {name: x}\n",
            'InferenceService "x": spec: Field required',
        ),
    ],
)
def test_not_an_inference_service(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    with pytest.raises(RenderError, match=message.replace("[", r"\[")):
        render(path, SETTINGS)


def test_missing_file() -> None:
    with pytest.raises(RenderError, match="No such file"):
        render(ROOT / "no-such-file.yaml", SETTINGS)


def test_command_on_every_example_prints_valid_yaml() -> None:
    runs = [
        (
            path,
            subprocess.Popen(
                [MEMOSERVE, "render", "-f", str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for path in EXAMPLES
    ]
    for path, run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        kinds = [o["kind"] for o in yaml.safe_load_all(out)]
        assert "Deployment" in kinds, path


def test_command_refuses_invalid_input_in_one_line(tmp_path: Path) -> None:
    bad = INVALID[0]
    env_bad = subprocess.Popen(
        [MEMOSERVE, "render", "-f", str(EXAMPLES[0])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"MEMOSERVE_OPERATOR_RUN_AS_USER": "root", "PATH": ""},
    )
    run = subprocess.run(
        [MEMOSERVE, "render", "-f", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("error: ")
    assert expected_message(bad) in run.stderr
    out, err = env_bad.communicate(timeout=60)
    assert env_bad.returncode == 1
    assert out == ""
    assert err.startswith("error: MEMOSERVE_OPERATOR_RUN_AS_USER: ")
    assert err.count("\n") == 1
