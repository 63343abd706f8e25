"""ModelInfer calls traced as REST requests are (docs/tracing.md), on each gRPC transport: the
caller's ``traceparent`` metadata is the parent, the call's span names the RPC and its status."""

from __future__ import annotations

import secrets

import grpc
import pytest

from memoserve_serving.grpc.infer import SPAN_NAME
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.grpc.test_grpc_server import typed_request
from tests.serving.tracing.test_traces import of_trace, receiver, traceparent
from tests.support.models import AffineModel
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("grpc_transport")
__all__ = ["receiver"]  # the fixture, shared

SPAN_KIND_SERVER = 2
GRPC_NOT_FOUND = 5


def test_a_call_is_a_span_under_the_callers_trace(receiver: OtlpReceiver, redis_url: str) -> None:
    settings = serving_settings(redis_url=redis_url, cache_namespace=secrets.token_hex(4))
    miss_header, miss_trace, caller_span = traceparent()
    hit_header, hit_trace, _ = traceparent()
    bad_header, bad_trace, _ = traceparent()
    with ServerThread(settings, AffineModel()) as running:
        with grpc.insecure_channel(running.grpc_target) as channel:
            stub = GRPCInferenceServiceStub(channel)
            stub.ModelInfer(typed_request(), metadata=(("traceparent", miss_header),))
            stub.ModelInfer(typed_request(), metadata=(("traceparent", hit_header),))
            unknown = typed_request()
            unknown.model_name = "nobody"
            with pytest.raises(grpc.RpcError):
                stub.ModelInfer(unknown, metadata=(("traceparent", bad_header),))
        spans = receiver.wait_for(
            lambda got: (
                {s.trace_id for s in got if s.name == SPAN_NAME}
                >= {miss_trace, hit_trace, bad_trace}
                and any(s.name == "cache store" for s in got)
            )
        )
    miss = of_trace(spans, miss_trace)
    assert set(miss) == {SPAN_NAME, "decode", "cache lookup", "model run", "cache store"}
    call = miss[SPAN_NAME]
    assert call.kind == SPAN_KIND_SERVER
    assert call.parent_span_id == caller_span
    assert call.attributes["rpc.system"] == "grpc"
    assert call.attributes["rpc.method"] == "ModelInfer"
    assert call.attributes["rpc.grpc.status_code"] == 0
    assert call.attributes["memoserve.model"] == "affine"
    assert miss["cache lookup"].attributes["memoserve.cache.result"] == "miss"
    hit = of_trace(spans, hit_trace)
    assert set(hit) == {SPAN_NAME, "decode", "cache lookup"}
    assert hit["cache lookup"].attributes["memoserve.cache.result"] == "hit"
    assert of_trace(spans, bad_trace)[SPAN_NAME].attributes["rpc.grpc.status_code"] == (
        GRPC_NOT_FOUND
    )
