"""OpenTelemetry traces of infer requests, exported over OTLP/gRPC to a real receiver
(tests/support/otlp_receiver.py), from servers configured only by the standard OTEL_* variables.

The servers run in this process (ServerThread), each reading the variables when its lifespan
starts, so each test sets them before starting a server: the front and its upstream get
service names of their own that way.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from memoserve_serving.tracing import TracingUnavailable, open_tracing
from tests.serving.front.test_front import body, front_settings, wait_ready
from tests.support.models import AffineModel
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("http_transport")  # tests/serving/conftest.py

SERVER_SPAN = "POST /v2/models/{name}/infer"
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
BODY = body()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # ms: export at once
        yield running


def traceparent() -> tuple[str, str, str]:
    """(header, trace id, parent span id) of a sampled W3C trace context."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def infer(server: ServerThread, **headers: str) -> httpx.Response:
    response = httpx.post(
        f"{server.url}/v2/models/affine/infer", json=BODY, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return response


def of_trace(spans: list[ReceivedSpan], trace_id: str) -> dict[str, ReceivedSpan]:
    """The spans of one trace by name (each name once in the traces these tests make)."""
    found = [span for span in spans if span.trace_id == trace_id]
    by_name = {span.name: span for span in found}
    assert len(by_name) == len(found), f"a span name repeats: {[s.name for s in found]}"
    return by_name


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_when_an_otlp_endpoint_is_configured(
    environ: dict[str, str], on: bool
) -> None:
    tracing = open_tracing(environ)
    assert (tracing is not None) is on
    if tracing is not None:
        tracing.shutdown()


def test_an_export_protocol_other_than_grpc_is_a_clear_error() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    with pytest.raises(TracingUnavailable, match="OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"):
        open_tracing(environ)


def test_a_server_without_the_variables_traces_nothing(redis_url: str) -> None:
    settings = serving_settings(redis_url=redis_url, grpc_enabled=False)
    with ServerThread(settings, AffineModel()) as server:
        infer(server)
        assert server.app.state.tracing is None


def test_a_miss_and_a_hit_are_spans_under_the_callers_trace(
    receiver: OtlpReceiver, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "memoserve-test")
    settings = serving_settings(
        redis_url=redis_url, grpc_enabled=False, cache_namespace=secrets.token_hex(4)
    )
    miss_header, miss_trace, caller_span = traceparent()
    hit_header, hit_trace, _ = traceparent()
    with ServerThread(settings, AffineModel()) as server:
        assert infer(server, traceparent=miss_header).headers["x-memoserve-cache"] == "miss"
        assert infer(server, traceparent=hit_header).headers["x-memoserve-cache"] == "hit"
        assert server.app.state.dataplane is not None
        digest = server.app.state.dataplane.served.digest
        spans = receiver.wait_for(
            lambda got: (
                {s.trace_id for s in got if s.name == SERVER_SPAN} >= {miss_trace, hit_trace}
                and any(s.name == "cache store" for s in got)
            )
        )
    miss = of_trace(spans, miss_trace)
    assert set(miss) == {SERVER_SPAN, "decode", "cache lookup", "model run", "cache store"}
    request = miss[SERVER_SPAN]
    assert request.service == "memoserve-test"
    assert request.kind == SPAN_KIND_SERVER
    assert request.parent_span_id == caller_span  # the caller's traceparent is the parent
    assert request.attributes["memoserve.cache.result"] == "miss"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.request.method"] == "POST"
    assert request.attributes["memoserve.model"] == "affine"
    lookup = miss["cache lookup"]
    assert lookup.attributes["memoserve.cache.result"] == "miss"
    assert lookup.attributes["memoserve.model.digest"] == digest
    assert miss["decode"].parent_span_id == request.span_id
    assert lookup.parent_span_id == request.span_id
    assert miss["model run"].parent_span_id == lookup.span_id
    assert miss["cache store"].parent_span_id == lookup.span_id

    hit = of_trace(spans, hit_trace)
    assert set(hit) == {SERVER_SPAN, "decode", "cache lookup"}  # no model, no store
    assert hit["cache lookup"].attributes["memoserve.cache.result"] == "hit"


def test_concurrent_misses_show_who_waited_for_whose_answer(
    receiver: OtlpReceiver, redis_url: str
) -> None:
    settings = serving_settings(
        redis_url=redis_url, grpc_enabled=False, cache_namespace=secrets.token_hex(4)
    )
    contexts = [traceparent() for _ in range(4)]
    with ServerThread(settings, AffineModel(delay=0.3)) as server:
        threads = [
            threading.Thread(target=infer, args=(server,), kwargs={"traceparent": header})
            for header, _, _ in contexts
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        trace_ids = {trace_id for _, trace_id, _ in contexts}
        spans = receiver.wait_for(
            lambda got: {s.trace_id for s in got if s.name == SERVER_SPAN} >= trace_ids
        )
    runs = [s for s in spans if s.name == "model run" and s.trace_id in trace_ids]
    waits = [s for s in spans if s.name == "single-flight wait" and s.trace_id in trace_ids]
    assert len(runs) == 1  # one request ran the model ...
    assert len(waits) == 3  # ... the others waited for its answer, in this process
    assert {w.attributes["memoserve.singleflight"] for w in waits} == {"local"}
    assert {w.trace_id for w in waits} == trace_ids - {runs[0].trace_id}


def test_a_miss_through_the_front_is_one_trace_into_the_upstream(
    receiver: OtlpReceiver, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "model-tier")
    upstream_settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    with ServerThread(upstream_settings, AffineModel()) as upstream:
        monkeypatch.setenv("OTEL_SERVICE_NAME", "cache-front")
        settings = front_settings(
            upstream, redis_url, grpc_enabled=False, cache_namespace=secrets.token_hex(4)
        )
        with ServerThread(settings) as front:
            wait_ready(front)
            response = infer(front)  # no traceparent: the front starts the trace
            assert response.headers["x-memoserve-cache"] == "miss"

            def both_ends(got: list[ReceivedSpan]) -> bool:
                return any(
                    s.service == "model-tier" and s.name == SERVER_SPAN for s in got
                ) and any(s.service == "cache-front" and s.name == "cache store" for s in got)

            spans = receiver.wait_for(both_ends)
    roots = [s for s in spans if s.service == "cache-front" and s.name == SERVER_SPAN]
    assert len(roots) == 1
    assert roots[0].parent_span_id == ""
    trace = [s for s in spans if s.trace_id == roots[0].trace_id]
    by_service: dict[str, dict[str, Any]] = {}
    for span in trace:
        by_service.setdefault(span.service, {})[span.name] = span
    front_spans, model_spans = by_service["cache-front"], by_service["model-tier"]
    assert set(front_spans) == {
        SERVER_SPAN,
        "decode",
        "cache lookup",
        "upstream call",
        "cache store",
    }
    call = front_spans["upstream call"]
    assert call.kind == SPAN_KIND_CLIENT
    assert call.parent_span_id == front_spans["cache lookup"].span_id
    # The upstream continued the front's trace: its request span is the call's child.
    assert model_spans[SERVER_SPAN].parent_span_id == call.span_id
    # The model tier runs uncached (the front caches): its model run is the request's child.
    assert set(model_spans) == {SERVER_SPAN, "decode", "model run"}
    assert model_spans["model run"].parent_span_id == model_spans[SERVER_SPAN].span_id


def test_a_server_without_the_variables_imports_nothing_of_opentelemetry() -> None:
    """Off costs nothing: not even OpenTelemetry's modules (a fresh interpreter, since this one
    has imported them for the other tests)."""
    code = (
        "import sys\n"
        "import memoserve_serving.http.app, memoserve_serving.grpc.infer\n"
        "import memoserve_serving.upstream.connect, memoserve_serving.lifespan\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_traced_misses_are_not_batched_each_call_continues_its_own_trace(
    receiver: OtlpReceiver, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = AffineModel(delay=0.5)  # the first call runs while the others arrive
    monkeypatch.setenv("OTEL_SERVICE_NAME", "model-tier")
    upstream_settings = serving_settings(cache_enabled=False, grpc_enabled=False)
    with ServerThread(upstream_settings, model) as upstream:
        monkeypatch.setenv("OTEL_SERVICE_NAME", "cache-front")
        settings = front_settings(
            upstream, redis_url, grpc_enabled=False, cache_namespace=secrets.token_hex(4)
        )
        with ServerThread(settings) as front:
            wait_ready(front)
            rows = [[float(i), 0.0, 0.0, 0.0] for i in range(4)]
            threads = [
                threading.Thread(
                    target=httpx.post,
                    args=(f"{front.url}/v2/models/affine/infer",),
                    kwargs={"json": body(row), "timeout": 10},
                )
                for row in rows
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            def four_calls_and_four_model_spans(got: list[ReceivedSpan]) -> bool:
                # Each process exports on its own schedule: wait for both sides' spans.
                served = [s for s in got if s.service == "model-tier" and s.name == SERVER_SPAN]
                calls = [s for s in got if s.name == "upstream call"]
                return len(served) >= len(rows) and len(calls) >= len(rows)

            spans = receiver.wait_for(four_calls_and_four_model_spans)
    assert model.rows_seen == [1] * len(rows)  # each alone, though they queued
    calls = {s.span_id: s for s in spans if s.name == "upstream call"}
    served = [s for s in spans if s.service == "model-tier" and s.name == SERVER_SPAN]
    assert {s.parent_span_id for s in served} == set(calls)  # each under its own call
