"""A real OTLP/gRPC trace receiver for the tests, made from OpenTelemetry's own protobufs.

The ``opentelemetry-proto`` package ships the generated messages and gRPC service of OTLP
(``opentelemetry.proto.collector.trace.v1``); this serves its ``TraceService/Export`` on a free
loopback port and keeps every span it is sent. Chosen over the OpenTelemetry Collector built
from its Go modules: that build (a few hundred modules) would add minutes to a fresh
``make test`` for the same wire protocol, which is what the tests check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from memoserve_dev.ports import free_port


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it came over the wire, with its resource's service.name."""

    service: str
    name: str
    trace_id: str  # hex
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, spans: list[ReceivedSpan] | None, lock: threading.Lock) -> None:
        self._spans, self._lock = spans, lock  # spans None: count nothing, keep nothing

    def Export(  # noqa: N802  # the name of the gRPC method
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        if self._spans is None:
            return trace_service_pb2.ExportTraceServiceResponse()
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(resource.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """``with OtlpReceiver() as receiver:`` listens on ``receiver.endpoint``."""

    def __init__(self, port: int | None = None, *, keep: bool = True) -> None:
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._spans if keep else None, self._lock), self._server
        )
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def wait_for(
        self, done: Callable[[list[ReceivedSpan]], bool], timeout: float = 15
    ) -> list[ReceivedSpan]:
        """The spans received once ``done(spans)`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({(s.service, s.name) for s in spans})
                raise AssertionError(f"spans not received in {timeout} s; got {names}")
            time.sleep(0.05)

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


def main() -> None:
    """``python -m tests.support.otlp_receiver PORT``: receive spans until killed, keeping
    none (the bench's sink: bench/serving/tracing_cost.py)."""
    import sys

    with OtlpReceiver(port=int(sys.argv[1]), keep=False):
        threading.Event().wait()


if __name__ == "__main__":
    main()
