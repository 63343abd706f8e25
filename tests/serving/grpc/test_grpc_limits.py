"""gRPC calls that end early or ask too much, on each transport: a deadline shorter than the
model's answer, a call the client cancels, and a message far past the body limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from memoserve_serving.cache.store import RedisAnswerCache
from memoserve_serving.grpc.infer import CACHE_METADATA
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.grpc.test_grpc_server import raw_request, typed_request
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("grpc_transport")

SLOW_MODEL_SECONDS = 1.0


def flights(running: ServerThread) -> int:
    """Misses in flight in the server's single-flight table."""
    cache = running.app.state.cache
    assert isinstance(cache, RedisAnswerCache)
    return len(cache._flights)


async def until(condition: Callable[[], bool], what: str, bound: float = 10.0) -> None:
    """Wait for ``condition`` (the server's side of a call ends after the client's)."""
    give_up = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < give_up, f"still not {what} after {bound} s"
        await asyncio.sleep(0.02)


async def test_a_deadline_shorter_than_the_model_is_deadline_exceeded_and_caches_nothing(
    redis_url: str,
) -> None:
    model = AffineModel(delay=SLOW_MODEL_SECONDS)
    with ServerThread(serving_settings(redis_url=redis_url), model) as running:
        async with grpc.aio.insecure_channel(running.grpc_target) as channel:
            stub = GRPCInferenceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ModelInfer(typed_request(), timeout=SLOW_MODEL_SECONDS / 4)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The server gave the call up: its flight is over (a computation that went on to
            # fill the cache would still be in flight here).
            await until(lambda: model.calls == 1 and flights(running) == 0, "given up")
            call = stub.ModelInfer(typed_request(), timeout=10 * SLOW_MODEL_SECONDS)
            await call
            trailers = dict(await call.trailing_metadata() or ())
    assert trailers[CACHE_METADATA] == "miss"  # nothing was cached for the late call
    assert model.calls == 2


async def test_a_cancelled_call_frees_its_single_flight_slot(redis_url: str) -> None:
    model = AffineModel(delay=SLOW_MODEL_SECONDS)
    with ServerThread(serving_settings(redis_url=redis_url), model) as running:
        async with grpc.aio.insecure_channel(running.grpc_target) as channel:
            stub = GRPCInferenceServiceStub(channel)
            call = stub.ModelInfer(raw_request(), timeout=10 * SLOW_MODEL_SECONDS)
            await until(lambda: flights(running) == 1, "in flight")
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await until(lambda: flights(running) == 0, "freed")
            # The next identical call leads a flight of its own and is answered.
            again = stub.ModelInfer(raw_request(), timeout=10 * SLOW_MODEL_SECONDS)
            response = await again
    assert [output.name for output in response.outputs] == ["y", "sum"]
    assert model.calls == 2


def test_a_64_mib_request_is_resource_exhausted_as_documented(redis_url: str) -> None:
    """The gRPC limit is MEMOSERVE_MAX_BODY_BYTES (16 MiB by default), as HTTP's 413."""
    model = AffineModel()
    with (
        ServerThread(serving_settings(redis_url=redis_url), model) as running,
        grpc.insecure_channel(running.grpc_target) as channel,
    ):
        stub = GRPCInferenceServiceStub(channel)
        rows = 64 * 1024 * 1024 // 16  # FP32 [rows, 4]: 64 MiB of tensor data
        tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[rows, 4])
        request = pb.ModelInferRequest(
            model_name="affine", inputs=[tensor], raw_input_contents=[bytes(rows * 16)]
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, timeout=60)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # and the server goes on serving
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
    assert model.calls == 0
