"""What only the native transport does (native_front.py), with real grpcio clients; the rest of
the gRPC suite runs on it and on the grpc.aio fallback alike."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from memoserve_contract.settings import GrpcTransport
from memoserve_serving.grpc.handlers import MODEL_INFER_PATH
from memoserve_serving.grpc.native_front import CallContext, NativeInferServer
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.grpc.test_grpc_server import infer, typed_request
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

IO_THREAD_NAME = "grpc-native-io"  # what pygrpc-native names its tokio threads


def _io_thread_policies() -> list[int]:
    policies = []
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == IO_THREAD_NAME:
                policies.append(os.sched_getscheduler(int(task.name)))
        except OSError:  # a thread that ended meanwhile
            continue
    return policies


def test_its_io_threads_yield_to_the_event_loop(redis_url: str) -> None:
    settings = serving_settings(redis_url=redis_url, grpc_transport=GrpcTransport.NATIVE)
    with ServerThread(settings, AffineModel()) as running:
        with grpc.insecure_channel(running.grpc_target) as channel:
            assert infer(GRPCInferenceServiceStub(channel), typed_request())[1] == "miss"
        policies = _io_thread_policies()  # named by now: they have served a call
        loop_policy = os.sched_getscheduler(running.thread.native_id or 0)
    assert policies, f"no thread named {IO_THREAD_NAME}: has pygrpc-native renamed them?"
    assert set(policies) == {os.SCHED_BATCH}
    assert loop_policy == os.SCHED_OTHER  # the event loop's thread got its own policy back


BIG_ANSWER = b"y" * (64 << 20)  # still being written when stop() closes the front


class Handler:
    """ModelInfer as the tests need it: echo, abort with trailers, or wait to be cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False
        self.seen: list[tuple[tuple[tuple[str, str | bytes], ...], float | None]] = []
        self.then: Callable[[], object] | None = None  # called on the loop after answering

    async def __call__(self, data: bytes, context: CallContext) -> bytes:
        self.seen.append((context.invocation_metadata(), context.time_remaining()))
        if data == b"abort":
            context.set_trailing_metadata((("x-memoserve-cache", "bypass"),))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no such tensor")
        if data == b"wait":
            self.started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        context.set_trailing_metadata((("x-memoserve-cache", "hit"),))
        if self.then is not None:
            asyncio.get_running_loop().call_soon(self.then)
        if data == b"big":
            return BIG_ANSWER
        return data[::-1]


def _native_server(handler: Handler) -> NativeInferServer:
    """ModelInfer by ``handler``, grpc.health.v1 on the fallback server behind it."""
    fallback = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), fallback)
    return NativeInferServer(
        "127.0.0.1:0", MODEL_INFER_PATH, handler, fallback, max_receive_bytes=1024, reuse_port=False
    )


@pytest.fixture
async def front() -> AsyncIterator[tuple[NativeInferServer, Handler, grpc.aio.Channel]]:
    handler = Handler()
    server = _native_server(handler)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield server, handler, channel
    await server.stop(None)


def _model_infer(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(MODEL_INFER_PATH)  # bytes in, bytes out


async def _running_call(channel: grpc.aio.Channel, handler: Handler) -> grpc.aio.UnaryUnaryCall:
    """A ModelInfer call its handler is running (and waits in until cancelled)."""
    call = _model_infer(channel)(b"wait")
    await asyncio.wait_for(handler.started.wait(), 10)
    return call


async def test_model_infer_answers_with_the_handlers_bytes_and_trailers(
    front: tuple[NativeInferServer, Handler, grpc.aio.Channel],
) -> None:
    _, handler, channel = front
    call = _model_infer(channel)(b"abc", metadata=(("cache-control", "no-cache"),), timeout=30)
    assert await call == b"cba"
    assert ("x-memoserve-cache", "hit") in tuple(await call.trailing_metadata())
    metadata, remaining = handler.seen[-1]
    assert ("cache-control", "no-cache") in metadata
    assert remaining is not None
    assert 20 < remaining <= 30


async def test_an_abort_is_the_callers_status_with_the_trailers_set_before_it(
    front: tuple[NativeInferServer, Handler, grpc.aio.Channel],
) -> None:
    _, _, channel = front
    call = _model_infer(channel)(b"abort")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "no such tensor"
    assert ("x-memoserve-cache", "bypass") in tuple(caught.value.trailing_metadata())


async def test_a_request_above_the_limit_is_resource_exhausted_before_the_handler(
    front: tuple[NativeInferServer, Handler, grpc.aio.Channel],
) -> None:
    _, handler, channel = front
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _model_infer(channel)(b"x" * 1025)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1025 bytes, above 1024" in (caught.value.details() or "")
    assert handler.seen == []


async def test_other_methods_reach_the_fallback_server(
    front: tuple[NativeInferServer, Handler, grpc.aio.Channel],
) -> None:
    _, _, channel = front
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_client_that_goes_away_cancels_the_handler(
    front: tuple[NativeInferServer, Handler, grpc.aio.Channel],
) -> None:
    _, handler, channel = front
    call = await _running_call(channel, handler)
    call.cancel()
    for _ in range(100):
        if handler.cancelled:
            break
        await asyncio.sleep(0.05)
    assert handler.cancelled


async def test_a_second_stop_with_a_shorter_grace_ends_the_first_sooner(
    front: tuple[NativeInferServer, Handler, grpc.aio.Channel],
) -> None:
    server, handler, channel = front
    call = await _running_call(channel, handler)
    started = time.monotonic()
    first = asyncio.ensure_future(server.stop(60))
    await asyncio.sleep(0.1)
    await asyncio.wait_for(server.stop(0.2), 10)
    await asyncio.wait_for(first, 1)
    assert time.monotonic() - started < 10  # not the first stop's 60 s
    assert handler.cancelled
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)


async def test_a_tmpdir_too_deep_for_a_socket_path_still_serves_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))  # what TMPDIR sets
    server = _native_server(Handler())
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert (await check).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(None)


async def test_stop_sends_the_answers_already_handed_to_the_front(
    front: tuple[NativeInferServer, Handler, grpc.aio.Channel],
) -> None:
    server, handler, _ = front
    stopping: list[asyncio.Future[None]] = []
    # a grace ample for a loaded machine: the answer must be sent within what is left of it
    handler.then = lambda: stopping.append(asyncio.ensure_future(server.stop(60)))
    options = [("grpc.max_receive_message_length", 2 * len(BIG_ANSWER))]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel:
        answer = await _model_infer(channel)(b"big", timeout=30)
    assert len(answer) == len(BIG_ANSWER)
    await asyncio.wait_for(stopping[0], 60)
