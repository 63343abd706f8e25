"""`memoserve run` refuses bad input in one line on stderr, exit 1, no traceback, and leaves
nothing running."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from memoserve_dev.ports import free_port
from tests.cli.test_run import MEMOSERVE, QUICKSTART


def _write(directory: Path, name: str, document: object) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def _cases(tmp_path: Path, sample_models: Path) -> list[tuple[list[str], str]]:
    """(arguments, what the one line must say) for each kind of bad input."""
    good = yaml.safe_load(QUICKSTART.read_text())
    good["spec"]["model"]["uri"] = str(sample_models / "iris.onnx")

    def variant(name: str, **model: str) -> str:
        document = yaml.safe_load(yaml.safe_dump(good))
        document["spec"]["model"].update(model)
        return str(_write(tmp_path, name, document))

    external = yaml.safe_load(yaml.safe_dump(good))
    closed = free_port()  # nothing listens there
    external["spec"]["cache"] = {"external": {"host": "127.0.0.1", "port": closed}}
    not_a_model = tmp_path / "garbage.onnx"
    not_a_model.write_text("not a model\n")
    return [
        (["-f", str(_write(tmp_path, "bad-yaml", "kind: [unclosed\n"))], "invalid YAML at line"),
        (["-f", str(tmp_path / "absent.yaml")], "absent.yaml: No such file or directory"),
        (
            ["-f", variant("missing-model", uri="/no/such/iris.onnx")],
            "cannot read /no/such/iris.onnx: no such file or directory",
        ),
        (
            ["-f", variant("unknown-format", format="pickle")],
            "spec.model.format: Input should be 'onnx', 'sklearn' or 'xgboost'",
        ),
        (["-f", variant("garbage", uri=str(not_a_model))], "cannot load ONNX model"),
        (
            # The CRD's own rule, with render's message: no relative paths.
            ["-f", variant("relative-uri", uri="models/iris.onnx")],
            "spec.model.uri: spec.model.uri must be gs://BUCKET[/PATH] or an absolute local path",
        ),
        (
            ["-f", variant("unreachable-redis-url"), "--redis-url", f"redis://127.0.0.1:{closed}"],
            f"--redis-url: cannot connect to redis://127.0.0.1:{closed}/0",
        ),
        (
            ["-f", str(_write(tmp_path, "unreachable-external", external))],
            f"spec.cache.external: cannot connect to redis://127.0.0.1:{closed}/0",
        ),
        (
            ["-f", str(QUICKSTART.parent / "front-triton.yaml")],
            "spec.model.server (nvcr.io/nvidia/tritonserver:24.08-py3) is a container for GKE: "
            "run it yourself and pass --upstream",
        ),
        (
            ["-f", variant("bad-redis-url"), "--redis-url", "http://127.0.0.1:6379"],
            "--redis-url: Redis URL must start with redis:// or rediss://",
        ),
    ]


def test_each_bad_input_is_one_line_and_exit_1(tmp_path: Path, sample_models: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cases = _cases(tmp_path, sample_models)
    runs = [
        subprocess.Popen(
            [MEMOSERVE, "run", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args, _ in cases
    ]
    for (args, message), run in zip(cases, runs, strict=True):
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 1, (args, stderr)
        assert stderr.startswith("error: "), (args, stderr)
        assert stderr.count("\n") == 1, (args, stderr)
        assert message in stderr, (args, stderr)


def test_port_in_use_is_refused_before_loading(quickstart: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [MEMOSERVE, "run", "-f", str(quickstart), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr == (
        f"error: --port: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_an_upstream_that_does_not_answer_is_one_line(quickstart: Path) -> None:
    port = free_port()  # nothing listens there
    done = subprocess.run(
        [MEMOSERVE, "run", "-f", str(quickstart), "--port", "0", "--grpc-port", "0",
         "--upstream", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        f"error: --upstream: cannot read http://127.0.0.1:{port}/v2/models/iris: "
        "[Errno 111] Connection refused\n"
    )


@pytest.fixture
def quickstart(tmp_path: Path, sample_models: Path) -> Path:
    document = yaml.safe_load(QUICKSTART.read_text())
    document["spec"]["model"]["uri"] = str(sample_models / "iris.onnx")
    return _write(tmp_path, "quickstart", document)
