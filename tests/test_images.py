"""Each image holds only the packages its Dockerfile copies, and works with just those.

No Docker engine here: the packages a Dockerfile COPYs are put on the path of a Python that
reads no site configuration (so the editable install of every package is not seen), with the
third-party dependencies from this environment. The image's entry points must import, and a
`memoserve` command whose package the image lacks must say so in one line.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dockerfile import copied_sources

ROOT = Path(__file__).resolve().parents[1]
SERVING = ROOT / "serving-image/Dockerfile"
OPERATOR = ROOT / "operator/Dockerfile"
CONTRACT, CLI, DEV = "memoserve_contract", "memoserve_cli", "memoserve_dev"


def _image_python(dockerfile: Path, code: str) -> subprocess.CompletedProcess[str]:
    package_roots = [
        str(ROOT / Path(source).parent)
        for source in copied_sources(dockerfile)
        if Path(source).name.startswith("memoserve_")
    ]
    path = [*package_roots, *site.getsitepackages()]
    return subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path), "COLUMNS": "200"},
        cwd="/",
    )


def _memoserve(dockerfile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; sys.argv = ['memoserve', *{list(args)!r}]; "
    code += "from memoserve_cli.main import main; main()"
    return _image_python(dockerfile, code)


@pytest.mark.parametrize(
    ("dockerfile", "has", "lacks"),
    [
        (
            SERVING,
            ["memoserve_contract", "memoserve_serving", "memoserve_cli"],
            ["memoserve_operator", "memoserve_dev"],
        ),
        (
            OPERATOR,
            ["memoserve_contract", "memoserve_operator", "memoserve_cli"],
            ["memoserve_serving", "memoserve_dev"],
        ),
    ],
    ids=["serving", "operator"],
)
def test_an_image_copies_its_packages_and_no_other(
    dockerfile: Path, has: list[str], lacks: list[str]
) -> None:
    names = {Path(source).name for source in copied_sources(dockerfile)}
    assert set(has) <= names
    assert not set(lacks) & names


def test_the_serving_image_serves_without_the_operator() -> None:
    done = _image_python(
        SERVING,
        "import importlib.util as u, memoserve_serving.http.app, memoserve_serving.http.server; "
        "assert u.find_spec('memoserve_operator') is None; assert u.find_spec('kopf') is not None",
    )
    assert done.returncode == 0, done.stderr
    assert _memoserve(SERVING, "serve", "--help").returncode == 0


def test_the_operator_image_runs_without_the_model_server() -> None:
    done = _image_python(
        OPERATOR,
        "import importlib.util as u, memoserve_operator.handlers, memoserve_operator.main; "
        "assert u.find_spec('memoserve_serving') is None",
    )
    assert done.returncode == 0, done.stderr
    assert _memoserve(OPERATOR, "operator", "--help").returncode == 0


@pytest.mark.parametrize(
    ("dockerfile", "args", "missing"),
    [
        (SERVING, ["render", "-f", "x.yaml"], "memoserve_operator"),
        (SERVING, ["operator"], "memoserve_operator"),
        (SERVING, ["dev", "memorystore-emulator", "--port", "0"], "memoserve_dev"),
        (OPERATOR, ["serve", "--model-name", "m"], "memoserve_serving"),
        (OPERATOR, ["run", "-f", "x.yaml"], "memoserve_serving and memoserve_dev"),
        (OPERATOR, ["dev", "sample-model"], "memoserve_dev"),
    ],
)
def test_a_command_of_another_image_says_what_is_missing(
    dockerfile: Path, args: list[str], missing: str
) -> None:
    done = _memoserve(dockerfile, *args)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: memoserve {args[0]}")
    assert f"needs {missing}," in line
