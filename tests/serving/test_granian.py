"""What only the granian transport has: its I/O threads' policy, its bind error, its settings.
Everything the two transports share runs on both (tests/serving/conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from memoserve_contract.settings import HttpTransport
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

MEMOSERVE = str(Path(sys.executable).with_name("memoserve"))


def _threads() -> set[int]:
    return {int(task.name) for task in Path("/proc/self/task").iterdir()}


def test_its_io_threads_yield_to_the_event_loop() -> None:
    before = _threads()
    settings = serving_settings(http_transport=HttpTransport.GRANIAN, grpc_enabled=False)
    with ServerThread(settings, AffineModel()) as running:
        assert httpx.get(running.url + "/v2/health/live").status_code == 200
        loop_thread = running.thread.native_id or 0
        started = _threads() - before - {loop_thread}
        policies = {tid: os.sched_getscheduler(tid) for tid in started}
        loop_policy = os.sched_getscheduler(loop_thread)
    assert policies, "granian started no thread of its own"
    assert set(policies.values()) == {os.SCHED_BATCH}, policies
    assert loop_policy == os.SCHED_OTHER  # the event loop's thread got its own policy back


def test_a_taken_port_is_one_line_and_exit_1(sample_models: Path, tmp_path: Path) -> None:
    taken = socket.socket()  # no SO_REUSEPORT: granian's socket cannot share the port
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    log = tmp_path / "termination-log"
    argv = [MEMOSERVE, "serve", "--model-name", "iris", "--model-format", "onnx"]
    argv += ["--model-uri", str(sample_models / "iris.onnx"), "--host", "127.0.0.1"]
    with taken:
        done = subprocess.run(
            [*argv, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "MEMOSERVE_HTTP_TRANSPORT": "granian",
                "MEMOSERVE_GRPC_ENABLED": "false",
                "MEMOSERVE_LOG_FORMAT": "text",
                "MEMOSERVE_TERMINATION_LOG": str(log),
            },
        )
    assert done.returncode == 1, done.stderr
    assert f"HTTP cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert "backtrace" not in done.stderr.lower()
    assert log.read_text().startswith(f"HTTP cannot listen on 127.0.0.1:{port}")


def test_port_0_serves_on_a_port_it_picks() -> None:
    settings = serving_settings(http_transport=HttpTransport.GRANIAN, grpc_enabled=False, port=0)
    with ServerThread(settings, AffineModel()) as running:
        port = running.server.bound_port
        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/v2/health/live").status_code == 200
        # Held for granian, not taken by anyone else: a plain bind on it fails.
        with socket.socket() as other, pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", port))


def test_a_body_over_the_limit_is_refused_on_any_path() -> None:
    # The Starlette routes are served through a bridge that reads the body first: it must not
    # read more than the limit, whatever the path.
    settings = serving_settings(
        http_transport=HttpTransport.GRANIAN, grpc_enabled=False, max_body_bytes=64
    )
    with (
        ServerThread(settings, AffineModel()) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        for path in ("/v2/health/ready", "/metrics"):
            refused = http.post(path, content=b"x" * 65)
            assert refused.status_code == 413, (path, refused.text)
            assert "64" in refused.json()["error"]
            chunked = http.post(path, content=iter([b"x" * 40, b"x" * 40]))
            assert chunked.status_code == 413, (path, chunked.text)
        assert http.post("/v2/health/ready", content=b"x" * 10).status_code == 405
        assert http.get("/v2/health/ready").status_code == 200
