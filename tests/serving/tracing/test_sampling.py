"""Which requests are traced: the root decision drawn before the SDK, a caller's followed."""

from __future__ import annotations

import secrets
import time

import pytest

from memoserve_serving.trace_sampling import RootSampling, root_sampling
from tests.serving.front.test_front import front_settings, wait_ready
from tests.serving.tracing.test_traces import SERVER_SPAN, infer, receiver, traceparent
from tests.support.models import AffineModel
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.serving import ServerThread, serving_settings

__all__ = ["receiver"]  # the fixture, shared


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, RootSampling(1.0, parent_based=True)),  # the SDK's default: parentbased_always_on
        ({"OTEL_TRACES_SAMPLER": "always_off"}, RootSampling(0.0, parent_based=False)),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, RootSampling(0.0, True)),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            RootSampling(0.25, parent_based=True),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "7"},
            RootSampling(1.0, False),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"},
            RootSampling(1.0, False),
        ),
        ({"OTEL_TRACES_SAMPLER": "xray"}, None),  # not a standard one: the SDK decides
    ],
)
def test_the_standard_samplers_are_read_from_the_variables(
    environ: dict[str, str], expected: RootSampling | None
) -> None:
    assert root_sampling(environ) == expected


def test_a_ratio_keeps_about_that_share_of_new_traces() -> None:
    sampling = RootSampling(0.2, parent_based=True)
    kept = sum(bool(sampling.starts_trace(has_parent=False)) for _ in range(20_000))
    assert 3_400 < kept < 4_600  # 4,000 expected; 8 standard deviations either side


def test_a_callers_decision_rules_only_under_a_parent_based_sampler() -> None:
    assert RootSampling(0.0, parent_based=True).starts_trace(has_parent=True) is None
    assert RootSampling(0.0, parent_based=False).starts_trace(has_parent=True) is False
    assert RootSampling(1.0, parent_based=False).starts_trace(has_parent=True) is True


def test_unsampled_requests_make_no_spans_and_pass_the_decision_upstream(
    receiver: OtlpReceiver, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model tier would trace everything it is not told otherwise about ...
    monkeypatch.setenv("OTEL_SERVICE_NAME", "model-tier")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    with ServerThread(
        serving_settings(cache_enabled=False, grpc_enabled=False), AffineModel()
    ) as up:
        # ... the front starts no trace of its own and follows its callers.
        monkeypatch.setenv("OTEL_SERVICE_NAME", "cache-front")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
        settings = front_settings(
            up, redis_url, grpc_enabled=False, cache_namespace=secrets.token_hex(4)
        )
        with ServerThread(settings) as front:
            wait_ready(front)
            unsampled = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
            infer(front)  # a miss, no caller's trace: not traced here, nothing upstream
            infer(front, traceparent=unsampled)  # a hit: not traced
            sampled, trace_id, _ = traceparent()
            infer_miss = {"Cache-Control": "no-cache", "traceparent": sampled}
            infer(front, **infer_miss)  # the caller's sampled trace: traced on both tiers
            spans = receiver.wait_for(
                lambda got: any(s.service == "model-tier" and s.name == SERVER_SPAN for s in got)
            )
            time.sleep(0.3)  # anything else sent would have arrived by now (50 ms batches)
            spans = receiver.spans()
    assert {s.trace_id for s in spans} == {trace_id}
    assert {s.service for s in spans} == {"cache-front", "model-tier"}
