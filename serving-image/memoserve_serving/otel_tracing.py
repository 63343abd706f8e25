"""OpenTelemetry's side of tracing (tracing.py): imported only when the OTEL_* variables ask
for traces, so that a server without them loads nothing of OpenTelemetry.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from memoserve_serving.trace_sampling import RootSampling, root_sampling
from memoserve_serving.tracing import (
    CACHE_RESULT,
    CLIENT,
    ENDPOINTS,
    HTTP_STATUS,
    INTERNAL,
    TracingUnavailable,
    tracing_wanted,
)

_KINDS = {INTERNAL: SpanKind.INTERNAL, CLIENT: SpanKind.CLIENT}

log = logging.getLogger(__name__)

INSTRUMENTATION = "memoserve"
DEFAULT_SERVICE_NAME = "memoserve"
_PROPAGATOR = TraceContextTextMapPropagator()  # W3C trace context, whatever OTEL_PROPAGATORS says


class Tracing:
    """A tracer provider exporting over OTLP/gRPC, and the tracer the server's spans come from."""

    def __init__(self, provider: Any, tracer: Tracer, sampling: RootSampling | None) -> None:
        self._provider = provider
        self.tracer = tracer
        self._sampling = sampling  # None: the SDK's sampler decides, by making a span

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Tracing | None:
        """Tracing as the OTEL_* variables say (the SDK reads them from ``os.environ``), or
        None when they do not ask for it."""
        if not tracing_wanted(environ):
            return None
        protocol = environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        )
        if protocol.strip().lower() != "grpc":
            raise TracingUnavailable(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: memoserve exports traces over OTLP/gRPC "
                "only (set it to grpc, or unset it)"
            )
        # Imported only when asked for: the SDK and the exporter cost start-up time otherwise.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        sampling = root_sampling(environ)
        defaults = Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME})
        provider = TracerProvider(
            resource=defaults.merge(Resource.create()),
            sampler=sampling.sdk_sampler() if sampling is not None else None,
        )
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info(
            "tracing on: OTLP/gRPC to %s",
            next(environ[name] for name in ENDPOINTS if environ.get(name)),
        )
        return cls(provider, provider.get_tracer(INSTRUMENTATION), sampling)

    def server_span(
        self,
        name: str,
        carrier: Mapping[str, str],
        attributes: Callable[[], dict[str, Any]],
        status: Callable[[int], tuple[str, int]] = lambda code: (HTTP_STATUS, code),
    ) -> RequestSpan | None:
        """The span of one request served, child of the caller's ``traceparent`` (in
        ``carrier``, lower-case keys) if it sent one, and current (in this task's context)
        until :meth:`RequestSpan.end`; None for a request whose trace is not kept and that
        has no caller's decision to pass on (nothing of OpenTelemetry runs for it then)."""
        sampling = self._sampling
        if sampling is not None and sampling.starts_trace("traceparent" in carrier) is False:
            return None
        parent = _PROPAGATOR.extract(carrier)
        # The method is in the name; attributes are made only for a span that is made.
        span = self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes()
        )
        return RequestSpan(span, self.tracer, status)

    def recording(self) -> bool:
        """Whether the current request's trace is kept (sampled): spans under one that is not
        would cost as much and be dropped, so the instrumented places make none."""
        return trace.get_current_span().is_recording()

    def child_span(self, name: str, kind: str = INTERNAL) -> Any:
        """A span under the current one, current itself inside the ``with`` block."""
        return self.tracer.start_as_current_span(name, kind=_KINDS[kind])

    def past_span(self, name: str, started_ns: int, **attributes: Any) -> None:
        """A span, under the current one, for something that began at ``started_ns`` (from
        :func:`now_ns`) and just ended: for work known to have happened only afterwards."""
        span = self.tracer.start_span(name, start_time=started_ns, attributes=attributes)
        span.end()

    def outgoing_context(self) -> dict[str, str]:
        """The headers that carry this request's trace to a server it calls (see
        :func:`_outgoing_context`)."""
        return _outgoing_context()

    def flush(self) -> None:
        """Export what is buffered now (blocking)."""
        self._provider.force_flush()

    def shutdown(self) -> None:
        """Export what is buffered and stop (blocking: the exporter's last flush)."""
        self._provider.shutdown()


def _outgoing_context() -> dict[str, str]:
    """The headers that carry this request's trace to a server it calls: the current span's
    ``traceparent`` (and ``tracestate``), or, for a request whose trace is not kept, a
    ``traceparent`` that says so (flags 00), so the server called starts no trace of its own."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    if not headers:
        headers["traceparent"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    return headers


class RequestSpan:
    """A server span made current for the spans under it, until :meth:`end`."""

    __slots__ = ("_status", "_token", "_tracer", "recording", "span")

    def __init__(
        self, span: Span, tracer: Tracer, status: Callable[[int], tuple[str, int]]
    ) -> None:
        self.span = span
        self._tracer = tracer
        self._status = status  # the answer's HTTP status -> the attribute that says it
        # Not sampled: still current, so that the decision travels upstream (traceparent
        # flags 00), but nothing is made under it.
        self.recording = span.is_recording()
        self._token = context.attach(trace.set_span_in_context(span))

    def child(self, name: str) -> Any:
        """A span under this one, current inside the ``with`` block."""
        return self._tracer.start_as_current_span(name)

    def end(self, status_code: int, cache_result: str) -> None:
        span = self.span
        context.detach(self._token)
        if not self.recording:
            return
        span.set_attribute(*self._status(status_code))
        span.set_attribute(CACHE_RESULT, cache_result)
        if status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
