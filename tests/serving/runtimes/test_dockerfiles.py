"""The serving Dockerfiles, checked without a Docker engine: parsed, and their scripts run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.dockerfile import Instruction, parse

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = [ROOT / "serving-image/Dockerfile", ROOT / "serving-image/Dockerfile.cuda"]


def _last(instructions: list[Instruction], keyword: str) -> Instruction:
    return [i for i in instructions if i.keyword == keyword][-1]


def _final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [n for n, i in enumerate(instructions) if i.keyword == "FROM"]
    return instructions[starts[-1] :]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_runs_memoserve_serve_as_a_numeric_non_root_user(path: Path) -> None:
    final = _final_stage(parse(path))
    user = _last(final, "USER").arguments
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), user  # numeric: runAsNonRoot can verify it
    assert json.loads(_last(final, "ENTRYPOINT").arguments) == ["memoserve", "serve"]
    assert _last(final, "EXPOSE").arguments == "8080 8081"  # HTTP, gRPC
    env = " ".join(i.arguments for i in final if i.keyword == "ENV")
    assert "MEMOSERVE_MODEL_DIR=/models" in env
    assert any("chown 10001:10001 /models" in i.arguments for i in final if i.keyword == "RUN")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "memoserve" in scripts


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copies_only_what_exists_and_what_its_dockerignore_lets_through(path: Path) -> None:
    ignore = Path(f"{path}.dockerignore").read_text().splitlines()
    for instruction in parse(path):
        if instruction.keyword != "COPY" or instruction.arguments.startswith("--from"):
            continue
        *sources, _ = instruction.arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert f"!{source.rstrip('/')}" in ignore, source


def test_bases(tmp_path: Path) -> None:
    cpu, cuda = (parse(path) for path in DOCKERFILES)
    assert _last(cpu, "ARG").arguments == "PYTHON_IMAGE=python:3.11-slim"
    assert re.fullmatch(
        r"CUDA_IMAGE=nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu2[24]\.04",
        _last(cuda, "ARG").arguments,
    )


def _requirements(path: Path, tmp_path: Path) -> list[str]:
    """Run the Dockerfile's requirements script on the real pyproject.toml."""
    script = next(i.heredoc for i in parse(path) if i.keyword == "RUN" and i.heredoc)
    workdir = tmp_path / path.name
    workdir.mkdir()
    (workdir / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    subprocess.run([sys.executable, "-c", script], cwd=workdir, check=True)
    return (workdir / "requirements.txt").read_text().splitlines()


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group()


def test_the_cpu_image_installs_the_serving_extra(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = project["dependencies"] + project["optional-dependencies"]["serving"]
    assert _requirements(DOCKERFILES[0], tmp_path) == expected


def test_the_cuda_image_swaps_in_the_gpu_builds(tmp_path: Path) -> None:
    cpu = _requirements(DOCKERFILES[0], tmp_path)
    gpu = _requirements(DOCKERFILES[1], tmp_path)
    swaps = {"onnxruntime": "onnxruntime-gpu", "xgboost-cpu": "xgboost"}
    assert [swaps.get(_name(r), _name(r)) + r[len(_name(r)) :] for r in cpu] == gpu
    assert {"onnxruntime-gpu", "xgboost"} <= {_name(r) for r in gpu}
