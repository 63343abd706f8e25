"""tritonclient.grpc with typed inputs, sync and aio.

``InferInput.set_data_from_numpy`` always sends ``raw_input_contents`` (test_grpc_server.py tests
that, sync and aio). Typed contents go through tritonclient's own generated messages and stubs
(``tritonclient.grpc.service_pb2`` / ``service_pb2_grpc``), which share the ``inference.*`` names
with memoserve's: the same question asked typed and raw is one cache entry, typed in gets typed
out, raw in gets raw out. (tritonclient's ``InferResult.as_numpy`` reads only raw outputs, as
Triton answers; a typed answer is read from the message's ``contents``.)
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("grpc_transport")

ROW = [1.0, 2.0, 3.0, 4.0]
Y = [3.0, 5.0, 7.0, 9.0]


@pytest.fixture
def model() -> AffineModel:
    return AffineModel()


@pytest.fixture
def server(redis_url: str, model: AffineModel) -> Iterator[ServerThread]:
    with ServerThread(serving_settings(redis_url=redis_url), model) as running:
        yield running


def typed_request(request_id: str) -> service_pb2.ModelInferRequest:
    tensor = service_pb2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend(ROW)
    return service_pb2.ModelInferRequest(model_name="affine", id=request_id, inputs=[tensor])


def raw_input() -> triton.InferInput:
    tensor = triton.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.array([ROW], dtype=np.float32))
    return tensor


def typed_y(response: service_pb2.ModelInferResponse) -> list[float]:
    assert not response.raw_output_contents  # typed in, typed out
    y = next(o for o in response.outputs if o.name == "y")
    assert list(y.shape) == [1, 4]
    return list(y.contents.fp32_contents)


def test_sync_typed_then_raw_share_one_entry(server: ServerThread, model: AffineModel) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        caches = []
        for call in ("t1", "t2"):
            response, rpc = stub.ModelInfer.with_call(typed_request(call), timeout=10)
            assert response.id == call
            assert typed_y(response) == Y
            caches.append(dict(rpc.trailing_metadata())["x-memoserve-cache"])
    assert caches == ["miss", "hit"]
    client = triton.InferenceServerClient(server.grpc_target)
    raw = client.infer("affine", [raw_input()])
    assert raw.get_response().raw_output_contents  # raw in, raw out
    assert raw.as_numpy("y").tolist() == [Y]
    assert model.calls == 1


async def test_aio_typed_then_raw_share_one_entry(server: ServerThread, model: AffineModel) -> None:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        caches = []
        for call in ("t1", "t2"):
            rpc = stub.ModelInfer(typed_request(call), timeout=10)
            response = await rpc
            assert response.id == call
            assert typed_y(response) == Y
            caches.append(dict(await rpc.trailing_metadata())["x-memoserve-cache"])
    assert caches == ["miss", "hit"]
    async with triton_aio.InferenceServerClient(server.grpc_target) as client:
        raw = await client.infer("affine", [raw_input()])
    assert raw.get_response().raw_output_contents
    assert raw.as_numpy("y").tolist() == [Y]
    assert model.calls == 1
