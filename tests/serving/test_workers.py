"""`memoserve serve --workers N`: N processes on the same ports (SO_REUSEPORT), as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import httpx
from prometheus_client.mmap_dict import MmapedDict

from memoserve_contract.settings import HttpTransport
from memoserve_dev.ports import free_port
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.grpc.test_grpc_lifecycle import serve_until_it_exits
from tests.serving.test_server import MEMOSERVE, wait_ready

BODY = {
    "inputs": [
        {"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
    ]
}


def _children(pid: int) -> list[int]:
    """The worker processes (not multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    children = [int(child) for child in text.split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _requests_seen(url: str) -> float:
    """memoserve_requests_total of the pod, from whichever worker answers this connection."""
    text = httpx.get(f"{url}/metrics", headers={"Connection": "close"}).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("memoserve_requests_total{")
    )


def _requests_by_worker(directory: Path) -> dict[str, float]:
    """Each worker's own memoserve_requests_total, as it last wrote it for the others."""
    counts: dict[str, float] = {}
    for file in directory.glob("memoserve-metrics-*/counter_*.db"):
        counts[file.stem] = sum(
            value
            for key, value, _, _ in MmapedDict.read_all_values_from_file(str(file))
            if '"memoserve_requests_total"' in key
        )
    return counts


def test_two_workers_share_the_ports_and_stop_together(
    sample_models: Path, redis_url: str, tmp_path: Path, http_transport: HttpTransport
) -> None:
    port, grpc_port = free_port(), free_port()
    argv = [MEMOSERVE, "serve", "--model-name", "iris", "--model-format", "onnx"]
    argv += ["--model-uri", str(sample_models / "iris.onnx"), "--redis-url", redis_url]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port)]
    argv += ["--workers", "2"]
    env = {**os.environ, "MEMOSERVE_DRAIN_SECONDS": "0.2", "MEMOSERVE_LOG_FORMAT": "text"}
    env["MEMOSERVE_HTTP_TRANSPORT"] = http_transport
    env["TMPDIR"] = str(tmp_path)  # where the workers' metrics meet
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        deadline = time.monotonic() + 30
        while len(_children(process.pid)) < 2 or not all(
            httpx.get(f"{url}/v2/health/ready", headers={"Connection": "close"}).status_code == 200
            for _ in range(10)
        ):
            assert time.monotonic() < deadline, "the workers never all became ready"
            time.sleep(0.1)
        workers = _children(process.pid)
        assert len(workers) == 2
        # Fresh connections land on both workers, and /metrics on either is the pod's.
        answers = [
            httpx.post(f"{url}/v2/models/iris/infer", json=BODY, headers={"Connection": "close"})
            for _ in range(31)
        ]
        assert {a.status_code for a in answers} == {200}
        assert {a.headers["x-memoserve-cache"] for a in answers[1:]} == {"hit"}  # one Redis
        # A sibling's figures are as of its last write, at most a second ago.
        deadline = time.monotonic() + 10
        while _requests_seen(url) != 31:
            assert time.monotonic() < deadline, "/metrics never added up the workers"
            time.sleep(0.1)
        assert {_requests_seen(url) for _ in range(10)} == {31}
        by_worker = _requests_by_worker(tmp_path)
        assert len(by_worker) == 2, by_worker
        assert sum(by_worker.values()) == 31
        assert 0 not in by_worker.values(), f"every connection reached one worker: {by_worker}"
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="float_input", datatype="FP32", shape=[1, 4]
        )
        tensor.contents.fp32_contents.extend([5.1, 3.5, 1.4, 0.2])
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            _, call = GRPCInferenceServiceStub(channel).ModelInfer.with_call(
                pb.ModelInferRequest(model_name="iris", inputs=[tensor]), timeout=10
            )
        assert dict(call.trailing_metadata())["x-memoserve-cache"] == "hit"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
        assert not list(tmp_path.glob("memoserve-metrics-*")), "the metrics stayed behind"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_taken_port_fails_before_any_worker_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve_until_it_exits(tmp_path, "--grpc-port", str(port), "--workers", "2")
    assert done.returncode == 1
    assert "cannot listen on 127.0.0.1: [Errno 98] Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_that_dies_takes_the_pod_down(sample_models: Path) -> None:
    port = free_port()
    argv = [MEMOSERVE, "serve", "--model-name", "iris", "--model-format", "onnx"]
    argv += ["--model-uri", str(sample_models / "iris.onnx"), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--grpc-port", "0", "--workers", "2"]
    process = subprocess.Popen(
        argv, env={**os.environ, "MEMOSERVE_LOG_FORMAT": "text"}, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + 30
        while len(_children(process.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(_children(process.pid)[0], signal.SIGKILL)
        assert process.wait(timeout=30) != 0
        assert process.stderr is not None
        assert "exited (-9): stopping the others" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_go_with_a_parent_killed_outright(sample_models: Path) -> None:
    port = free_port()
    argv = [MEMOSERVE, "serve", "--model-name", "iris", "--model-format", "onnx"]
    argv += ["--model-uri", str(sample_models / "iris.onnx"), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--grpc-port", "0", "--workers", "2"]
    env = {**os.environ, "MEMOSERVE_DRAIN_SECONDS": "0", "MEMOSERVE_LOG_FORMAT": "text"}
    process = subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + 30
        while len(workers := _children(process.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        process.kill()  # no signal handler runs: only the kernel can tell the workers
        process.wait()
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its parent"
            time.sleep(0.1)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, "the port is still served"
    finally:
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by init, not by us)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
