"""`memoserve serve` as users run it: a real process, real signals, graceful drain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from memoserve_contract.settings import HttpTransport
from memoserve_dev.ports import free_port
from tests.serving.test_app import infer_body
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

MEMOSERVE = str(Path(sys.executable).with_name("memoserve"))


async def test_drain_reports_not_ready_and_finishes_in_flight_requests(
    redis_url: str, http_transport: HttpTransport
) -> None:
    settings = serving_settings(redis_url=redis_url, drain_seconds=0.5)
    slow = AffineModel(delay=1.0)
    with ServerThread(settings, slow) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            in_flight = asyncio.create_task(http.post("/v2/models/affine/infer", json=infer_body()))
            await asyncio.sleep(0.2)  # the slow request is now running
            running.server.handle_exit(signal.SIGTERM, None)  # what the signal handler calls
            assert (await http.get("/v2/health/ready")).status_code == 503
            assert (await http.get("/v2/health/live")).status_code == 200
            response = await in_flight
            assert response.status_code == 200
            running.thread.join(timeout=10)
            assert not running.thread.is_alive()  # it exited on its own after the drain


def wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"memoserve exited early: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(url + "/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("memoserve did not become ready")


def test_serve_subprocess_answers_and_exits_cleanly_on_sigterm(
    sample_models: Path, redis_url: str, http_transport: HttpTransport
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MEMOSERVE_HTTP_TRANSPORT": http_transport,
        "MEMOSERVE_DRAIN_SECONDS": "0.3",
        "MEMOSERVE_LOG_FORMAT": "json",
        "MEMOSERVE_MODEL_DIR": str(sample_models / "cache"),
        # Every listener on a free port: the default 8081 may be anyone's on this machine.
        "MEMOSERVE_GRPC_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        [
            MEMOSERVE,
            "serve",
            "--model-name",
            "iris",
            "--model-uri",
            str(sample_models / "iris.onnx"),
            "--model-format",
            "onnx",
            "--redis-url",
            redis_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        body = {
            "inputs": [
                {
                    "name": "float_input",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "data": [5.1, 3.5, 1.4, 0.2],
                }
            ]
        }
        first = httpx.post(url + "/v2/models/iris/infer", json=body)
        second = httpx.post(url + "/v2/models/iris/infer", json=body)
        assert (first.headers["x-memoserve-cache"], second.headers["x-memoserve-cache"]) == (
            "miss",
            "hit",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    logs = process.stderr.read() if process.stderr else ""
    assert '"severity": "INFO"' in logs  # JSON lines for Cloud Logging
    assert "SIGTERM received" in logs


def test_a_second_sigterm_ends_the_drain_at_once(
    sample_models: Path, http_transport: HttpTransport
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MEMOSERVE_HTTP_TRANSPORT": http_transport,
        "MEMOSERVE_DRAIN_SECONDS": "60",  # far longer than the test waits
        "MEMOSERVE_LOG_FORMAT": "text",
        "MEMOSERVE_GRPC_PORT": str(free_port()),
    }
    argv = [MEMOSERVE, "serve", "--model-name", "iris", "--model-format", "onnx"]
    argv += ["--model-uri", str(sample_models / "iris.onnx"), "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*argv, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while httpx.get(url + "/v2/health/ready").status_code != 503:  # draining
            assert time.monotonic() < deadline, "the first SIGTERM did not start the drain"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        # Within seconds, not the 60 s drain; uvicorn re-raises the signals it caught once it has
        # stopped, so it ends as a process SIGTERM killed, granian with 0.
        expected = 0 if http_transport is HttpTransport.GRANIAN else -signal.SIGTERM
        assert process.wait(timeout=20) == expected
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-format", "onnx", "--model-uri", "/nonexistent/model.onnx"], "/nonexistent"),
        (["--model-format", "onnx", "--model-uri", "x", "--redis-url", "http://x"], "redis"),
    ],
)
def test_serve_refuses_bad_configuration_in_one_line(args: list[str], message: str) -> None:
    done = subprocess.run(
        [MEMOSERVE, "serve", "--model-name", "m", *args, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MEMOSERVE_LOG_FORMAT": "text", "MEMOSERVE_GRPC_PORT": "0"},
    )
    assert done.returncode != 0
    assert message in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_a_model_that_cannot_load_says_why_in_the_termination_log(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    done = subprocess.run(
        [MEMOSERVE, "serve", "--model-name", "iris", "--model-format", "onnx", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "MEMOSERVE_MODEL_URI": str(tmp_path / "missing.onnx"),
            "MEMOSERVE_TERMINATION_LOG": str(log),
            "MEMOSERVE_LOG_FORMAT": "text",
            "MEMOSERVE_GRPC_PORT": "0",
        },
    )
    assert done.returncode == 1
    (line,) = log.read_text().splitlines()
    assert line.startswith("cannot load model iris: cannot read ")
    assert str(tmp_path / "missing.onnx") in line
    assert "Traceback" not in done.stderr
