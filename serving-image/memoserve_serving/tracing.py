"""OpenTelemetry traces of infer requests: off unless an OTLP endpoint is configured.

Configured only by the standard variables, read by the OpenTelemetry SDK itself:
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns tracing on;
``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` sample (default: parent-based, always on),
``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` name the process, ``OTEL_BSP_*`` batch the
export, ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn it off again. Export is
OTLP over gRPC. W3C ``traceparent``/``tracestate`` are read from requests and sent upstream.

When off, nothing of OpenTelemetry is imported or runs: the server holds ``None`` instead of a
``Tracing`` (otel_tracing.py, imported only by :func:`open_tracing` when the variables ask), and
each instrumented place checks that first (docs/tracing.md has the measured cost of both).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# The request headers (lower case, as HTTP/2 and ASGI give them) that carry a trace context.
TRACE_HEADERS = frozenset((b"traceparent", b"tracestate"))

# Span attributes (OpenTelemetry semantic conventions where one exists).
CACHE_RESULT = "memoserve.cache.result"
MODEL = "memoserve.model"
HTTP_STATUS = "http.response.status_code"
MODEL_DIGEST = "memoserve.model.digest"  # which version answered: stable and canary share a name

# Span kinds, by name (otel_tracing.py maps them to OpenTelemetry's).
INTERNAL, CLIENT = "internal", "client"


class TracingUnavailable(RuntimeError):
    """Tracing was asked for but cannot be set up (e.g. an export protocol we do not ship)."""


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces: an OTLP endpoint, and not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name) for name in ENDPOINTS)


def open_tracing(environ: Mapping[str, str]) -> Tracing | None:
    """Tracing as the OTEL_* variables say (the SDK reads them from ``os.environ``), or None
    when they do not ask for it; TracingUnavailable when they ask for what cannot be."""
    if not tracing_wanted(environ):
        return None
    from memoserve_serving.otel_tracing import Tracing

    return Tracing.from_environ(environ)


def now_ns() -> int:
    return time.time_ns()
