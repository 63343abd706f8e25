"""gRPC under trouble: Redis killed under load, the drain after SIGTERM, uvloop (production's
loop), a taken port, and `memoserve serve` as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from memoserve_dev.ports import free_port
from memoserve_dev.redis_server import RedisServer
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.grpc.test_grpc_server import typed_request
from tests.serving.test_server import MEMOSERVE, wait_ready
from tests.support.models import AffineModel
from tests.support.serving import DEFAULTS, ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("grpc_transport")


def triton_input(row: float) -> triton_aio.InferInput:
    tensor = triton_aio.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.array([[row, 0, 0, 0]], dtype=np.float32))
    return tensor


async def hammer(
    client: triton_aio.InferenceServerClient, stop: asyncio.Event, seen: list[str]
) -> None:
    """Rows 0..9 over and over; every answer must be right (a failed RPC raises)."""
    i = 0
    while not stop.is_set():
        row = i % 10
        result = await client.infer("affine", [triton_input(float(row))])
        assert result.as_numpy("y").tolist() == [[2.0 * row + 1, 1.0, 1.0, 1.0]]
        seen.append("ok")
        i += 1


async def test_redis_killed_under_grpc_load_fails_no_rpc(own_redis: RedisServer) -> None:
    settings = serving_settings(redis_url=own_redis.url, redis_breaker_reset_seconds=0.2)
    model = AffineModel()
    with ServerThread(settings, model) as running:
        async with triton_aio.InferenceServerClient(running.grpc_target) as client:
            stop = asyncio.Event()
            seen: list[str] = []
            workers = [asyncio.create_task(hammer(client, stop, seen)) for _ in range(8)]
            await asyncio.sleep(0.5)
            calls_before = model.calls
            own_redis.kill()
            await asyncio.sleep(1.0)
            calls_while_down = model.calls - calls_before
            own_redis.start()
            await asyncio.sleep(1.5)
            stop.set()
            await asyncio.gather(*workers)  # any failed RPC would raise here
    assert len(seen) > 100
    assert calls_while_down > 0  # answered by the model, uncached, while Redis was down
    cache_errors = running.app.state.metrics.cache_errors
    assert sum(m.samples[0].value for m in cache_errors.collect() if m.samples) > 0


async def test_drain_reports_not_serving_then_finishes_in_flight_rpcs(redis_url: str) -> None:
    settings = serving_settings(redis_url=redis_url, drain_seconds=0.5)
    model = AffineModel(delay=1.0)
    with ServerThread(settings, model) as running:
        async with grpc.aio.insecure_channel(running.grpc_target) as channel:
            stub = GRPCInferenceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            in_flight = asyncio.ensure_future(stub.ModelInfer(typed_request(), timeout=10))
            for _ in range(200):  # in flight: the model runs it (a fixed pause was too short
                if model.calls:  # for a loaded machine: the call reached the server late)
                    break
                await asyncio.sleep(0.05)
            running.server.handle_exit(signal.SIGTERM, None)
            check = await health.Check(health_pb2.HealthCheckRequest())
            assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert (await stub.ServerLive(pb.ServerLiveRequest())).live
            response = await in_flight  # finishes, though the drain ended meanwhile
            assert [o.name for o in response.outputs] == ["y", "sum"]
            running.thread.join(timeout=10)
            assert not running.thread.is_alive()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ServerLive(pb.ServerLiveRequest(), timeout=2)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_on_uvloop_like_production(redis_url: str) -> None:
    with (
        ServerThread(
            serving_settings(redis_url=redis_url), AffineModel(), loop="uvloop"
        ) as running,
        grpc.insecure_channel(running.grpc_target) as channel,
    ):
        stub = GRPCInferenceServiceStub(channel)
        caches = []
        for _ in range(2):
            _, call = stub.ModelInfer.with_call(typed_request(), timeout=10)
            caches.append(dict(call.trailing_metadata())["x-memoserve-cache"])
    assert caches == ["miss", "hit"]


def serve_until_it_exits(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``memoserve serve`` on the sample iris model with ``options``, expected to stop."""
    argv = [MEMOSERVE, "serve", "--model-name", "m", "--model-format", "onnx"]
    argv += ["--model-uri", str(_sample_onnx(tmp_path)), "--host", "127.0.0.1"]
    argv += ["--port", str(free_port()), *options]
    env = {**os.environ, "MEMOSERVE_LOG_FORMAT": "text", **transport_env()}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_a_taken_grpc_port_stops_the_process_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve_until_it_exits(tmp_path, "--grpc-port", str(port))
    assert done.returncode == 3  # uvicorn's code for a failed startup
    assert f"gRPC cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_tls_port_without_its_key_stops_the_process_with_a_clear_error(tmp_path: Path) -> None:
    done = serve_until_it_exits(
        tmp_path,
        *("--grpc-port", "0", "--grpc-tls-port", "0"),
        *("--grpc-tls-cert-file", str(tmp_path / "tls.crt")),
        *("--grpc-tls-key-file", str(tmp_path / "tls.key")),
    )
    assert done.returncode == 1
    assert "gRPC TLS: cannot read the key or certificate: " in done.stderr
    assert "Traceback" not in done.stderr


def transport_env() -> dict[str, str]:
    """The parametrised gRPC transport, for a ``memoserve serve`` process."""
    transport = DEFAULTS.get("grpc_transport")
    return {} if transport is None else {"MEMOSERVE_GRPC_TRANSPORT": str(transport)}


def _sample_onnx(tmp_path: Path) -> Path:
    from memoserve_dev.sample_models import write_sample_models

    write_sample_models(tmp_path)
    return tmp_path / "iris.onnx"


def test_serve_process_answers_grpc_and_drains_on_sigterm(
    sample_models: Path, redis_url: str
) -> None:
    port, grpc_port = free_port(), free_port()
    argv = [MEMOSERVE, "serve", "--model-name", "iris", "--model-format", "onnx"]
    argv += ["--model-uri", str(sample_models / "iris.onnx"), "--redis-url", redis_url]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port)]
    process = subprocess.Popen(
        argv,
        env={
            **os.environ,
            "MEMOSERVE_DRAIN_SECONDS": "0.3",
            "MEMOSERVE_LOG_FORMAT": "text",
            **transport_env(),
        },
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="float_input", datatype="FP32", shape=[1, 4]
        )
        tensor.contents.fp32_contents.extend([5.1, 3.5, 1.4, 0.2])
        request = pb.ModelInferRequest(model_name="iris", inputs=[tensor])
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = GRPCInferenceServiceStub(channel)
            caches = []
            for _ in range(2):
                response, call = stub.ModelInfer.with_call(request, timeout=10)
                caches.append(dict(call.trailing_metadata())["x-memoserve-cache"])
        assert caches == ["miss", "hit"]
        label = next(o for o in response.outputs if o.name == "label")
        assert list(label.contents.int64_contents) == [0]
        body = {"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32"}]}
        body["inputs"][0]["data"] = [5.1, 3.5, 1.4, 0.2]  # type: ignore[index]
        rest = httpx.post(f"http://127.0.0.1:{port}/v2/models/iris/infer", json=body)
        assert rest.headers["x-memoserve-cache"] == "hit"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_health_watch_follows_the_drain_and_ends_with_the_server(redis_url: str) -> None:
    settings = serving_settings(redis_url=redis_url, drain_seconds=1.0)
    with ServerThread(settings, AffineModel()) as running:
        async with grpc.aio.insecure_channel(running.grpc_target) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService"),
                timeout=20,
            )
            statuses = [(await watch.read()).status]
            running.server.handle_exit(signal.SIGTERM, None)
            # The stream ends when the server stops, not at the grace deadline.
            while (answer := await watch.read()) is not grpc.aio.EOF:
                statuses.append(answer.status)
            running.thread.join(timeout=10)
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    assert statuses == [serving, not_serving]
