"""What the front answers when its upstream is not ready or too slow, against a real server
process that misbehaves on purpose (tests/support/peer_scripts/v2_misbehaving.py).

An upstream's 503 is the front's 503 with ``Retry-After`` (a client should come back, not give
up); an upstream slower than ``upstream_timeout_seconds`` is a 504 (gRPC: DEADLINE_EXCEEDED),
in that time and not the client's; neither is ever cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.front.test_front import ROW, body, infer, wait_ready
from tests.serving.front.test_peers import front_for
from tests.support.peers import PeerServer, runs

TIMEOUT = 0.5  # the front's upstream_timeout_seconds
SLOW = 5.0  # how long the slow upstream takes: far past TIMEOUT, below the client's 10 s


@pytest.fixture
def unavailable(misbehaving_upstream: Callable[..., PeerServer]) -> PeerServer:
    return misbehaving_upstream("unavailable")


@pytest.fixture
def slow(misbehaving_upstream: Callable[..., PeerServer]) -> PeerServer:
    return misbehaving_upstream("slow", SLOW)


def test_an_upstream_503_is_a_503_with_retry_after_never_cached(
    unavailable: PeerServer, redis_url: str
) -> None:
    with front_for(unavailable, redis_url) as front:
        wait_ready(front)
        answers = [infer(front, body()) for _ in range(2)]
        assert [a.status_code for a in answers] == [503, 503]
        assert [a.headers.get("retry-after") for a in answers] == ["1", "1"]
        error = answers[0].json()["error"]
        assert error == f"upstream {unavailable.url} is not ready: warming up"
        assert runs(unavailable) == 2  # both went upstream: nothing was stored


def test_an_upstream_slower_than_the_timeout_is_a_504_in_that_time(
    slow: PeerServer, redis_url: str
) -> None:
    with front_for(slow, redis_url, upstream_timeout_seconds=TIMEOUT) as front:
        wait_ready(front)
        started = time.monotonic()
        answer = infer(front, body())  # no client deadline: the front's timeout bounds the call
        took = time.monotonic() - started
        assert answer.status_code == 504, answer.text
        assert answer.json()["error"] == f"upstream {slow.url} did not answer within 0.5 s"
        assert took < SLOW  # the front gave up, not the upstream's answer that ended the wait
        contents = pb.InferTensorContents(fp32_contents=ROW)
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="x", datatype="FP32", shape=[1, 4], contents=contents
        )
        with (
            grpc.insecure_channel(front.grpc_target) as channel,
            pytest.raises(grpc.RpcError) as failed,
        ):
            GRPCInferenceServiceStub(channel).ModelInfer(
                pb.ModelInferRequest(model_name="affine", inputs=[tensor]), timeout=10
            )
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "did not answer within 0.5 s" in (failed.value.details() or "")
        assert runs(slow) == 2  # the timed-out answer was not cached: the repeat went upstream
