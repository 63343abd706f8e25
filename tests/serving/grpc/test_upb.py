"""The protobuf backend check: silent on upb, a warning naming the way back on pure Python."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memoserve_serving.grpc.upb import check_protobuf_backend


def test_the_test_environment_runs_upb(caplog: pytest.LogCaptureFixture) -> None:
    assert check_protobuf_backend() == "upb"
    assert not caplog.records


def test_pure_python_protobuf_is_warned_about() -> None:
    # The backend is chosen at import: another interpreter, told to use pure Python.
    code = (
        "import logging; logging.basicConfig();"
        "from memoserve_serving.grpc.upb import check_protobuf_backend;"
        "print(check_protobuf_backend())"
    )
    env = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "python", done.stderr
    assert "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION" in done.stderr
