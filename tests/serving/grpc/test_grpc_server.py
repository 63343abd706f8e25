"""The gRPC endpoint end to end: real server (uvicorn + grpc.aio on one loop), real
redis-server, real clients (tritonclient.grpc sync and aio, and the generated stubs)."""

from __future__ import annotations

import datetime
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from memoserve_contract.settings import GrpcTransport
from memoserve_dev.ports import free_port
from memoserve_operator.grpc_tls.certificate import make_certificate
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.grpc.proto.open_inference_grpc_pb2_grpc import GRPCInferenceServiceStub
from tests.serving.test_app import infer_body
from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("grpc_transport")

ROW = [1.0, 2.0, 3.0, 4.0]
Y = [[3.0, 5.0, 7.0, 9.0]]


@pytest.fixture
def model() -> AffineModel:
    return AffineModel()


@pytest.fixture
def server(redis_url: str, model: AffineModel) -> Iterator[ServerThread]:
    with ServerThread(serving_settings(redis_url=redis_url), model) as running:
        yield running


@pytest.fixture
def stub(server: ServerThread) -> Iterator[GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield GRPCInferenceServiceStub(channel)


def typed_request(row: list[float] = ROW, **fields: Any) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 4], contents=pb.InferTensorContents(fp32_contents=row)
    )
    return pb.ModelInferRequest(**{"model_name": "affine", "inputs": [tensor], **fields})


def raw_request(row: list[float] = ROW, **fields: Any) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 4])
    raw = np.array([row], dtype=np.float32).tobytes()
    return pb.ModelInferRequest(
        **{"model_name": "affine", "inputs": [tensor], "raw_input_contents": [raw], **fields}
    )


def infer(
    stub: GRPCInferenceServiceStub,
    request: pb.ModelInferRequest,
    metadata: tuple[tuple[str, str], ...] = (),
) -> tuple[pb.ModelInferResponse, str]:
    """The response and how the cache answered (trailing metadata)."""
    response, call = stub.ModelInfer.with_call(request, metadata=metadata, timeout=10)
    return response, dict(call.trailing_metadata())["x-memoserve-cache"]


def triton_input(row: list[float] = ROW) -> triton.InferInput:
    tensor = triton.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.array([row], dtype=np.float32))
    return tensor


def test_health_metadata_and_readiness(
    server: ServerThread, stub: GRPCInferenceServiceStub
) -> None:
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="affine")).ready
    meta = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "memoserve"
    model = stub.ModelMetadata(pb.ModelMetadataRequest(name="affine"))
    assert (model.name, model.platform) == ("affine", "numpy_test")
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [("x", "FP32", [-1, 4])]
    assert [t.name for t in model.outputs] == ["y", "sum"]
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            health.Check(health_pb2.HealthCheckRequest(service="nope"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.ModelMetadata(pb.ModelMetadataRequest(name="other")),
        lambda s: s.ModelReady(pb.ModelReadyRequest(name="affine", version="7")),
        lambda s: s.ModelInfer(typed_request(model_name="other")),
    ],
    ids=["metadata", "ready-version", "infer"],
)
def test_unknown_model_or_version_is_not_found(stub: GRPCInferenceServiceStub, call: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(stub)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_typed_miss_then_hit_answers_typed(
    stub: GRPCInferenceServiceStub, model: AffineModel
) -> None:
    first, cache = infer(stub, typed_request(id="a"))
    assert cache == "miss"
    second, cache = infer(stub, typed_request(id="b"))
    assert cache == "hit"
    assert model.calls == 1
    assert (first.id, second.id) == ("a", "b")  # the id is echoed, not cached
    assert not second.raw_output_contents  # typed in, typed out
    outputs = {o.name: o for o in second.outputs}
    assert list(outputs["y"].contents.fp32_contents) == Y[0]
    assert list(outputs["y"].shape) == [1, 4]


def test_raw_request_answers_raw_and_honours_requested_outputs(
    stub: GRPCInferenceServiceStub,
) -> None:
    wanted = [pb.ModelInferRequest.InferRequestedOutputTensor(name="sum")]
    response, _ = infer(stub, raw_request(outputs=wanted))
    assert [o.name for o in response.outputs] == ["sum"]
    (raw,) = response.raw_output_contents
    assert np.frombuffer(raw, dtype=np.float32).tolist() == [24.0]


def test_rest_json_rest_binary_and_grpc_share_one_cache_entry(
    server: ServerThread, stub: GRPCInferenceServiceStub, model: AffineModel
) -> None:
    with httpx.Client(base_url=server.url) as http:
        rest = http.post("/v2/models/affine/infer", json=infer_body(ROW))
        assert rest.headers["x-memoserve-cache"] == "miss"
    assert infer(stub, typed_request())[1] == "hit"
    assert infer(stub, raw_request())[1] == "hit"
    client = triton.InferenceServerClient(server.grpc_target)
    result = client.infer("affine", [triton_input()])
    assert result.as_numpy("y").tolist() == Y
    assert model.calls == 1


def test_grpc_miss_then_rest_hit(server: ServerThread, stub: GRPCInferenceServiceStub) -> None:
    other = [9.0, 8.0, 7.0, 6.0]
    assert infer(stub, raw_request(other))[1] == "miss"
    with httpx.Client(base_url=server.url) as http:
        rest = http.post("/v2/models/affine/infer", json=infer_body(other))
    assert rest.headers["x-memoserve-cache"] == "hit"
    y = next(o for o in rest.json()["outputs"] if o["name"] == "y")
    assert y["data"] == [19.0, 17.0, 15.0, 13.0]


def test_cache_control_metadata(stub: GRPCInferenceServiceStub, model: AffineModel) -> None:
    assert infer(stub, typed_request(), (("cache-control", "no-store"),))[1] == "miss"
    assert infer(stub, typed_request())[1] == "miss"  # nothing was stored
    assert infer(stub, typed_request(), (("cache-control", "no-cache"),))[1] == "bypass"
    assert infer(stub, typed_request())[1] == "hit"
    assert model.calls == 3


def test_tritonclient_sync(server: ServerThread, model: AffineModel) -> None:
    client = triton.InferenceServerClient(server.grpc_target)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("affine")
    assert client.get_model_metadata("affine").name == "affine"
    outputs = [triton.InferRequestedOutput("y")]
    first = client.infer("affine", [triton_input()], outputs=outputs, request_id="r1")
    second = client.infer("affine", [triton_input()], outputs=outputs, request_id="r2")
    assert first.as_numpy("y").tolist() == second.as_numpy("y").tolist() == Y
    assert second.as_numpy("sum") is None  # only what was asked for
    assert second.get_response().id == "r2"
    assert model.calls == 1
    bad = triton.InferInput("x", [1, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException, match="'x'"):
        client.infer("affine", [bad])


async def test_tritonclient_aio(server: ServerThread, model: AffineModel) -> None:
    async with triton_aio.InferenceServerClient(server.grpc_target) as client:
        assert await client.is_server_ready()
        results = [
            await client.infer("affine", [triton_input([float(i), 0, 0, 0])]) for i in range(3)
        ]
        again = await client.infer("affine", [triton_input([2.0, 0, 0, 0])])
    assert [r.as_numpy("y")[0, 0] for r in results] == [1.0, 3.0, 5.0]
    assert again.as_numpy("y").tolist() == [[5.0, 1.0, 1.0, 1.0]]
    assert model.calls == 3


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        (typed_request([1.0, 2.0]), "'x'.*2 elements"),
        (raw_request(ROW[:3]), "'x'"),
        (
            pb.ModelInferRequest(
                model_name="affine",
                inputs=[
                    pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[2**40])
                ],
                raw_input_contents=[b"\x00" * 16],
            ),
            "'x'",
        ),
        (
            pb.ModelInferRequest(
                model_name="affine",
                inputs=[
                    pb.ModelInferRequest.InferInputTensor(
                        name="x",
                        datatype="INT8",
                        shape=[1],
                        contents=pb.InferTensorContents(int_contents=[300]),
                    )
                ],
            ),
            "out of range",
        ),
        (typed_request(raw_input_contents=[b"", b""]), "raw_input_contents"),
        (typed_request(outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="z")]), "'z'"),
    ],
    ids=["count", "raw-size", "huge-shape", "range", "raw-entries", "unknown-output"],
)
def test_bad_requests_are_invalid_argument_naming_the_problem(
    stub: GRPCInferenceServiceStub, request_: pb.ModelInferRequest, problem: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer.with_call(request_, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(problem, caught.value.details())
    assert dict(caught.value.trailing_metadata())["x-memoserve-cache"] == "bypass"


def test_a_model_failure_is_internal(redis_url: str) -> None:
    settings = serving_settings(redis_url=redis_url)
    with (
        ServerThread(settings, AffineModel(fail_on=7.0)) as running,
        grpc.insecure_channel(running.grpc_target) as channel,
    ):
        stub = GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(typed_request([7.0, 0, 0, 0]), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "refused" in caught.value.details()


def test_messages_past_the_body_limit_are_refused(redis_url: str) -> None:
    settings = serving_settings(redis_url=redis_url, max_body_bytes=1024)
    with (
        ServerThread(settings, AffineModel()) as running,
        grpc.insecure_channel(running.grpc_target) as channel,
    ):
        stub = GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(typed_request(id="x" * 2048), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_chosen_transport_serves_the_port(
    redis_url: str, grpc_transport: GrpcTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "memoserve_serving.grpc.server")
    with ServerThread(serving_settings(redis_url=redis_url), AffineModel()) as running:
        port = running.app.state.grpc_port
    said = [r.getMessage() for r in caplog.records if "gRPC listening" in r.getMessage()]
    assert said == [f"gRPC listening on 127.0.0.1:{port} ({grpc_transport}, protobuf upb)"]


def test_grpc_can_be_turned_off(redis_url: str) -> None:
    with ServerThread(
        serving_settings(redis_url=redis_url, grpc_enabled=False), AffineModel()
    ) as running:
        assert running.app.state.grpc_port is None
        assert running.app.state.stops == []
        assert httpx.get(running.url + "/v2/health/ready").status_code == 200


def test_reflection_describes_the_services(server: ServerThread) -> None:
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(server.grpc_target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= set(
            database.get_services()
        )
        pool = DescriptorPool(database)
        service = pool.FindServiceByName("inference.GRPCInferenceService")
        infer = service.methods_by_name["ModelInfer"]
        assert infer.input_type.full_name == "inference.ModelInferRequest"
        assert "Check" in pool.FindServiceByName("grpc.health.v1.Health").methods_by_name


def test_grpcurl_through_reflection(server: ServerThread) -> None:
    """grpcurl (built from its Go module) finds the services by reflection and infers."""
    from tests.cli.test_run import grpcurl

    tool = grpcurl()
    listed = subprocess.run(
        [tool, "-plaintext", server.grpc_target, "list"], capture_output=True, text=True, timeout=30
    )
    assert "inference.GRPCInferenceService" in listed.stdout.split(), listed.stderr
    body = '{"model_name": "affine", "inputs": [{"name": "x", "datatype": "FP32", '
    body += '"shape": [1, 4], "contents": {"fp32_contents": [1, 2, 3, 4]}}]}'
    argv = [tool, "-plaintext", "-v", "-d", body, server.grpc_target]
    argv.append("inference.GRPCInferenceService/ModelInfer")
    answers = [subprocess.run(argv, capture_output=True, text=True, timeout=30) for _ in "ab"]
    assert answers[0].returncode == 0, answers[0].stderr
    assert "x-memoserve-cache: miss" in answers[0].stdout
    assert "x-memoserve-cache: hit" in answers[1].stdout
    assert '"name": "y"' in answers[1].stdout


def test_grpc_requests_are_counted_with_http_ones(
    server: ServerThread, stub: GRPCInferenceServiceStub
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    infer(stub, typed_request())
    infer(stub, typed_request())
    with pytest.raises(grpc.RpcError):
        stub.ModelInfer(typed_request([1.0]))
    text = httpx.get(server.url + "/metrics").text
    counts = {
        (sample.labels["cache"], sample.labels["code"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "memoserve_requests"
        for sample in family.samples
        if sample.name == "memoserve_requests_total"
    }
    assert counts == {("miss", "200"): 1, ("hit", "200"): 1, ("bypass", "400"): 1}


def test_the_tls_port_serves_the_operators_certificate_from_the_same_cache(
    redis_url: str, model: AffineModel, tmp_path: Path
) -> None:
    """What the load balancer talks to: HTTP/2 over TLS with the key the operator made, and a
    question asked there first is a hit on the plaintext port (one cache)."""
    material = make_certificate("ml", "iris", datetime.datetime.now(datetime.UTC))
    (tmp_path / "tls.crt").write_text(material.cert_pem)
    (tmp_path / "tls.key").write_text(material.key_pem)
    tls_port = free_port()
    settings = serving_settings(
        redis_url=redis_url,
        grpc_tls_port=tls_port,
        grpc_tls_cert_file=tmp_path / "tls.crt",
        grpc_tls_key_file=tmp_path / "tls.key",
    )
    with ServerThread(settings, model) as server:
        target = f"127.0.0.1:{tls_port}"
        client = triton.InferenceServerClient(
            target,
            ssl=True,
            root_certificates=str(tmp_path / "tls.crt"),
            channel_args=[("grpc.ssl_target_name_override", "iris.ml.svc")],
        )
        assert client.is_server_ready()
        result = client.infer("affine", [triton_input()])
        assert result.as_numpy("y").tolist() == Y
        with grpc.insecure_channel(server.grpc_target) as channel:
            _, cache = infer(GRPCInferenceServiceStub(channel), raw_request())
        assert cache == "hit"
        # Plaintext on the TLS port is refused, not answered.
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as refused:
            GRPCInferenceServiceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def outcome(call: Any, request: Any) -> tuple[grpc.StatusCode, dict[str, str], str]:
    """(status code, trailing metadata, details) of one unary call, failed or not."""
    try:
        _, rpc = call(request, timeout=10)
    except grpc.RpcError as error:
        return error.code(), dict(error.trailing_metadata() or ()), error.details()
    return grpc.StatusCode.OK, dict(rpc.trailing_metadata()), ""


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("ModelInfer", b"\x0a\xff"),  # field 1 (model_name): a length past the end
        ("ModelInfer", b"\x0a\x02\xc3\x28"),  # a model name that is not UTF-8
        ("ModelMetadata", b"\xff\xff\xff"),
        ("ServerLive", b"\x08"),  # a varint with no value
    ],
)
def test_bytes_that_are_no_message_are_invalid_argument_naming_it(
    redis_url: str, method: str, body: bytes
) -> None:
    with (
        ServerThread(serving_settings(redis_url=redis_url), AffineModel()) as running,
        grpc.insecure_channel(running.grpc_target) as channel,
    ):
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
        code, trailers, details = outcome(call.with_call, body)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert details.startswith("the request is not a valid inference."), details
        if method == "ModelInfer":
            assert trailers["x-memoserve-cache"] == "bypass"
            metrics = httpx.get(f"{running.url}/metrics").text
            assert 'memoserve_requests_total{cache="bypass",code="400",model="affine"} 1.0' in (
                metrics
            )


def test_any_message_over_the_wire_is_answered_and_leaves_the_server_serving(
    redis_url: str,
) -> None:
    """The decoder's fuzz (test_codec.py) through a live server, plus bytes that are no message:
    every call ends with a status and the cache trailer, only OK or INVALID_ARGUMENT for a
    message, and a good request still works after all of them."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st

    from tests.serving.grpc.test_codec import _parameter, _tensor

    with (
        ServerThread(serving_settings(redis_url=redis_url), AffineModel()) as running,
        grpc.insecure_channel(running.grpc_target) as channel,
    ):
        stub = GRPCInferenceServiceStub(channel)
        raw_call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        # Bytes that parse reach the servicer (an empty model name: NOT_FOUND); bytes that
        # do not are INVALID_ARGUMENT too, never grpcio's bare UNKNOWN.
        answered_codes = {
            grpc.StatusCode.OK,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.INVALID_ARGUMENT,
        }

        @hypothesis_settings(
            max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        )
        @given(
            inputs=st.lists(_tensor, max_size=3),
            raw=st.lists(st.binary(max_size=24), max_size=3),
            parameters=st.dictionaries(st.text(max_size=4), _parameter, max_size=2),
        )
        def message(
            inputs: list[pb.ModelInferRequest.InferInputTensor],
            raw: list[bytes],
            parameters: dict[str, pb.InferParameter],
        ) -> None:
            request = pb.ModelInferRequest(
                model_name="affine", inputs=inputs, raw_input_contents=raw
            )
            for key, value in parameters.items():
                request.parameters[key].CopyFrom(value)
            code, trailers, details = outcome(stub.ModelInfer.with_call, request)
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), details
            assert "x-memoserve-cache" in trailers

        @hypothesis_settings(max_examples=50, deadline=None)
        @given(body=st.binary(max_size=64))
        def garbage(body: bytes) -> None:
            code, trailers, details = outcome(raw_call.with_call, body)
            assert code in answered_codes, details
            assert "x-memoserve-cache" in trailers

        message()
        garbage()
        assert infer(stub, typed_request())[1] in ("miss", "hit")
