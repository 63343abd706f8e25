"""spec.tracing over the operator's defaults, and the OTEL_* variables it becomes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memoserve_contract.resource.tracing import TracingSpec
from memoserve_contract.tracing_env import TraceExport, otel_env, trace_export

COLLECTOR = "http://otel-collector.observability:4317"


@pytest.mark.parametrize(
    ("spec", "default_endpoint", "expected"),
    [
        (None, None, None),  # nobody asked for traces
        (None, COLLECTOR, TraceExport(COLLECTOR, 0.01)),  # the operator's default
        (TracingSpec(), None, None),  # the block alone names no endpoint
        (TracingSpec(endpoint="http://c:4317"), None, TraceExport("http://c:4317", 0.01)),
        (TracingSpec(endpoint="http://c:4317"), COLLECTOR, TraceExport("http://c:4317", 0.01)),
        (TracingSpec(sampling_ratio=0.5), COLLECTOR, TraceExport(COLLECTOR, 0.5)),
        (TracingSpec(sampling_ratio=0), COLLECTOR, TraceExport(COLLECTOR, 0.0)),
        (TracingSpec(enabled=False), COLLECTOR, None),  # a service opts out
        (TracingSpec(enabled=False, endpoint="http://c:4317"), None, None),
    ],
)
def test_the_spec_overrides_the_operators_defaults_field_by_field(
    spec: TracingSpec | None, default_endpoint: str | None, expected: TraceExport | None
) -> None:
    assert trace_export(spec, default_endpoint=default_endpoint, default_ratio=0.01) == expected


@pytest.mark.parametrize(
    ("endpoint", "port"),
    [
        ("http://otel-collector:4317", 4317),
        ("http://otel-collector", 4317),  # OTLP/gRPC's port when the URL names none
        ("https://collector.example.com:8443/", 8443),
    ],
)
def test_the_endpoints_port_is_what_the_network_policy_opens(endpoint: str, port: int) -> None:
    assert TraceExport(endpoint, 0.1).port == port


def test_the_variables_are_the_standard_ones_the_serving_image_reads() -> None:
    env = otel_env(TraceExport(COLLECTOR, 0.05), service="ranker-model", namespace="ml")
    assert env == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.05",
        "OTEL_SERVICE_NAME": "ranker-model",
        "OTEL_RESOURCE_ATTRIBUTES": "k8s.namespace.name=ml",
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"endpoint": "otel-collector:4317"},  # no scheme: the exporter could not tell TLS
        {"endpoint": "grpc://otel-collector:4317"},
        {"samplingRatio": 1.5},
        {"samplingRatio": -0.1},
    ],
)
def test_a_bad_tracing_block_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TracingSpec.model_validate(fields)
