"""`memoserve run`'s parts in process: the settings through the operator's env builder, the
cache plan, the example request and the banner."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from memoserve_cli.run import RunError
from memoserve_cli.run.banner import curl_command, example_request, grpc_request, grpcurl_command
from memoserve_cli.run.cache import CachePlan, plan_cache
from memoserve_cli.run.spec import load_service, local_settings, spec_notices
from memoserve_contract.settings import ServingSettings
from memoserve_dev.redis_server import RedisServer
from memoserve_operator.builders.env import container_env
from memoserve_operator.render import parse_file
from memoserve_operator.settings import OperatorSettings
from memoserve_serving.cache.keys import request_digest
from memoserve_serving.grpc.codec import decode_request as decode_grpc
from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.protocol.request import decode_request as decode_http
from tests.cli.test_run import QUICKSTART
from tests.operator.helpers import make_isvc

ROOT = QUICKSTART.parents[2]
# What a laptop run sets itself; every other setting is the pod's.
LOCAL_FIELDS = {"host", "port", "model_dir", "drain_seconds", "log_level", "log_format"}
LOCAL_FIELDS |= {"redis_url", "redis_password", "redis_password_file", "redis_ca_file"}  # Secrets
LOCAL_FIELDS |= {"termination_log"}  # a pod's file; a terminal here
LOCAL_FIELDS |= {"redis_auth", "redis_read_replicas"}  # a Valkey / Redis Cluster's
# gRPC in plaintext on --grpc-port; the TLS port is for GKE's load balancer only.
LOCAL_FIELDS |= {"grpc_port", "grpc_tls_port", "grpc_tls_cert_file", "grpc_tls_key_file"}
REDIS = CachePlan("test", redis_url="redis://127.0.0.1:6379/0", redis_password="pw")

TLS_EXTERNAL = {
    "ttlSeconds": 120,
    "l1MaxBytes": 4096,
    "external": {
        "host": "10.0.0.3",
        "port": 6378,
        "tls": True,
        "passwordSecretRef": {"name": "redis-auth"},
        "caSecretRef": {"name": "redis-ca"},
    },
}


def _local(isvc: Any, plan: CachePlan = REDIS) -> ServingSettings:
    return local_settings(isvc, plan, host="127.0.0.1", port=9000, log_level="warning")


def _pod(isvc: Any) -> ServingSettings:
    """What `memoserve serve` reads in the pod (Secrets left out)."""
    env = container_env(isvc, OperatorSettings())
    return ServingSettings.from_env({e["name"]: e["value"] for e in env if "value" in e})


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"cache": TLS_EXTERNAL, "batching": {"maxBatchSize": 8, "maxWaitMs": 2.5}},
        {"cache": {"memorystore": {}}, "gpu": {"type": "nvidia-l4"}, "drainSeconds": 30},
        {"model": {"uri": "/m/x.onnx", "format": "onnx", "name": "flowers", "version": "3"}},
        {"grpc": {"enabled": True}, "ingress": {"enabled": True}},
        {"cache": {"valkey": {}, "readFromReplicas": True}},
    ],
)
def test_settings_are_the_pods_but_for_the_local_fields(spec: dict[str, Any]) -> None:
    isvc = make_isvc(**spec)
    local, pod = _local(isvc), _pod(isvc)
    for field in set(ServingSettings.model_fields) - LOCAL_FIELDS - {"cache_enabled"}:
        assert getattr(local, field) == getattr(pod, field), field
    assert local.cache_enabled  # the plan has a Redis
    assert (local.host, local.port, local.drain_seconds) == ("127.0.0.1", 9000, 0)
    assert (local.grpc_port, local.grpc_tls_port) == (8081, None)


def test_spec_values_reach_the_settings() -> None:
    isvc = make_isvc(cache=TLS_EXTERNAL, batching={"maxBatchSize": 8, "maxWaitMs": 2.5})
    settings = _local(isvc)
    assert (settings.cache_ttl_seconds, settings.l1_max_bytes) == (120, 4096)
    assert (settings.batch_max_size, settings.batch_max_wait_ms) == (8, 2.5)
    assert settings.cache_key_namespace == "ml/iris"
    assert settings.redis_ca_file is None  # the pod's mounted Secret path means nothing here
    assert settings.redis_password is not None
    assert settings.redis_password.get_secret_value() == "pw"


@pytest.mark.parametrize(
    "cache",
    [
        {"valkey": {}, "readFromReplicas": True},
        {"redisCluster": {}},
        {"existingValkey": {"name": "shared"}, "readFromReplicas": True},
    ],
)
def test_a_sharded_cache_runs_on_the_local_redis_without_iam(cache: dict[str, Any]) -> None:
    isvc = make_isvc(cache=cache)
    assert _pod(isvc).redis_auth == ("iam" if "existingValkey" not in cache else "password")
    local = _local(isvc)
    assert local.redis_auth == "password"  # the stand-in redis-server knows no IAM
    assert local.redis_read_replicas is False
    assert local.redis_url == REDIS.redis_url


def test_no_cache_in_the_spec_is_off_unless_a_redis_is_given() -> None:
    isvc = make_isvc()
    assert not _local(isvc, CachePlan("off", enabled=False)).cache_enabled
    assert _local(isvc).cache_enabled  # --redis-url


def test_gpu_runs_on_cpu_with_a_notice() -> None:
    assert spec_notices(make_isvc()) == []
    (line,) = spec_notices(make_isvc(gpu={"type": "nvidia-tesla-t4", "count": 2}))
    assert line == "spec.gpu (2 x nvidia-tesla-t4) applies on GKE; locally the model runs on CPU"


def test_quickstart_points_where_make_run_writes_the_sample_model() -> None:
    (isvc,) = parse_file(QUICKSTART)  # valid for the CRD, as every example
    assert isvc.model_name == "iris"
    assert isvc.spec.cache is not None
    assert isvc.spec.cache.source == "memorystore"
    found = re.search(r"^SAMPLE_MODELS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found is not None
    assert isvc.spec.model.uri == f"{found.group(1)}/iris.onnx"


def test_one_service_per_run(tmp_path: Path) -> None:
    both = tmp_path / "both.yaml"
    examples = [
        ROOT / "manifests" / "examples" / f
        for f in ("external-redis.yaml", "gpu-l4-hpa-ingress.yaml")
    ]
    both.write_text("---\n".join(p.read_text() for p in examples))
    with pytest.raises(RunError, match=r"holds 2 InferenceServices \(churn, resnet\); run one"):
        load_service(both)


def _plan(isvc: Any, tmp_path: Path, **options: Any) -> tuple[CachePlan, list[str]]:
    notices: list[str] = []
    values = {"redis_url": None, "redis_password": None, "redis_ca_file": None} | options
    with contextlib.ExitStack() as stack:
        plan = plan_cache(isvc, stack=stack, workdir=tmp_path, notice=notices.append, **values)
    return plan, notices


def test_plan_without_a_cache(tmp_path: Path, redis_url: str) -> None:
    assert _plan(make_isvc(), tmp_path) == (
        CachePlan("off: the spec has no cache, every request runs the model", enabled=False),
        [],
    )
    plan, notices = _plan(make_isvc(), tmp_path, redis_url=redis_url)
    assert plan.redis_url == redis_url
    assert notices == [
        "the spec has no cache (the cluster serves it uncached); --redis-url adds one"
    ]


def test_plan_external_says_what_it_cannot_read(tmp_path: Path, redis_server: RedisServer) -> None:
    external = {"host": "127.0.0.1", "port": redis_server.port, "passwordSecretRef": {"name": "s"}}
    plan, notices = _plan(make_isvc(cache={"external": external}), tmp_path)
    assert plan.redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert plan.description.endswith("(spec.cache.external)")
    assert notices == [
        "spec.cache.external.passwordSecretRef (Secret s) cannot be read locally: "
        "pass --redis-password or set MEMOSERVE_REDIS_PASSWORD"
    ]


def test_plan_refuses_a_wrong_password(tmp_path: Path, tls_redis: RedisServer) -> None:
    assert tls_redis.tls is not None
    external = {"host": "127.0.0.1", "port": tls_redis.port, "tls": True}
    isvc = make_isvc(cache={"external": external})
    plan, _ = _plan(
        isvc, tmp_path, redis_password="s3cret-auth", redis_ca_file=tls_redis.tls.ca_path
    )
    assert plan.redis_url == f"rediss://127.0.0.1:{tls_redis.port}/0"
    with pytest.raises(RunError, match=r"^spec\.cache\.external: .* refused authentication"):
        _plan(isvc, tmp_path, redis_password="wrong", redis_ca_file=tls_redis.tls.ca_path)


def test_example_request_follows_the_metadata() -> None:
    iris = ModelMetadata((TensorSpec("float_input", "FP32", (-1, 4)),), (), "onnxruntime_onnx")
    assert json.loads(example_request(iris)) == {
        "inputs": [
            {
                "name": "float_input",
                "shape": [1, 4],
                "datatype": "FP32",
                "data": [5.1, 3.5, 1.4, 0.2],
            }
        ]
    }
    mixed = ModelMetadata(
        (
            TensorSpec("ids", "INT64", (-1, -1)),
            TensorSpec("mask", "BOOL", (2,)),
            TensorSpec("text", "BYTES", (-1,)),
            TensorSpec("scale", "FP64", ()),
        ),
        (),
        "x",
    )
    inputs = json.loads(example_request(mixed))["inputs"]
    assert [(i["shape"], i["data"]) for i in inputs] == [
        ([1, 1], [1]),
        ([2], [True, False]),
        ([1], ["hello"]),
        ([], [5.1]),
    ]


def test_curl_survives_the_shell() -> None:
    body = example_request(ModelMetadata((TensorSpec("it's", "BYTES", (1,)),), (), "x"))
    curl = curl_command("http://127.0.0.1:8080/v2/models/m/infer", body)
    words = shlex.split(curl.replace("\\\n", ""))
    assert words[:3] == ["curl", "-si", "http://127.0.0.1:8080/v2/models/m/infer"]
    assert words[-2:] == ["-d", body]
    assert shlex.split(curl_command("u", body, "/tmp/r.json").replace("\\\n", ""))[-1] == (
        "@/tmp/r.json"
    )


def test_the_grpcurl_request_is_the_curl_requests_question() -> None:
    """Asked over gRPC as printed, the example is the same cache entry as over HTTP."""
    mixed = ModelMetadata(
        (
            TensorSpec("ids", "INT64", (-1, 3)),
            TensorSpec("mask", "BOOL", (2,)),
            TensorSpec("text", "BYTES", (-1,)),
            TensorSpec("x", "FP32", (1, 4)),
        ),
        (),
        "x",
    )
    body = example_request(mixed)
    printed = grpc_request("m", body)
    assert printed is not None
    message = json_format.Parse(printed, pb.ModelInferRequest())
    over_grpc, _ = decode_grpc(message)
    over_http = decode_http(body.encode())
    assert request_digest(over_grpc) == request_digest(over_http)
    argv = shlex.split(grpcurl_command("127.0.0.1:8081", printed).replace("\\\n", ""))
    assert argv == [
        "grpcurl", "-plaintext", "-v", "-d", printed,
        "127.0.0.1:8081", "inference.GRPCInferenceService/ModelInfer",
    ]  # fmt: skip


def test_no_grpcurl_for_datatypes_that_travel_raw() -> None:
    half = ModelMetadata((TensorSpec("h", "FP16", (1,)),), (), "x")
    assert grpc_request("m", example_request(half)) is None
