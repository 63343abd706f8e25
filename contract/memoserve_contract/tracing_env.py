"""The OpenTelemetry variables of the serving pods: the one place their names are spelled.

The serving image reads only the standard ``OTEL_*`` variables (memoserve_serving.tracing), so
that any OpenTelemetry tooling configures it the usual way; the operator sets them from
spec.tracing and its own defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from memoserve_contract.resource.tracing import TracingSpec

# A caller's sampled traceparent is followed; traces started here are kept at the ratio.
SAMPLER = "parentbased_traceidratio"
OTLP_GRPC_PORT = 4317  # the port of an endpoint URL that names none


@dataclass(frozen=True)
class TraceExport:
    """Where a service's pods send traces, and the share of new traces they keep."""

    endpoint: str
    sampling_ratio: float

    @property
    def port(self) -> int:
        """The endpoint's TCP port (the pods' NetworkPolicy opens egress to it)."""
        return urlsplit(self.endpoint).port or OTLP_GRPC_PORT


def trace_export(
    spec: TracingSpec | None, *, default_endpoint: str | None, default_ratio: float
) -> TraceExport | None:
    """spec.tracing over the operator's defaults; None: the pods do not trace."""
    if spec is not None and not spec.enabled:
        return None
    endpoint = spec.endpoint if spec is not None and spec.endpoint else default_endpoint
    if endpoint is None:
        return None
    ratio = default_ratio
    if spec is not None and spec.sampling_ratio is not None:
        ratio = spec.sampling_ratio
    return TraceExport(endpoint, ratio)


def otel_env(export: TraceExport, *, service: str, namespace: str) -> dict[str, str]:
    """The variables that make a serving pod export its traces; ``service``: the name its
    spans carry (the Deployment's)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": export.endpoint,
        "OTEL_TRACES_SAMPLER": SAMPLER,
        "OTEL_TRACES_SAMPLER_ARG": format(export.sampling_ratio, "g"),
        "OTEL_SERVICE_NAME": service,
        # No Deployment name: a canary's pods (NAME-canary) run the stable pods' environment
        # with another model; their spans say which by memoserve.model.digest.
        "OTEL_RESOURCE_ATTRIBUTES": f"k8s.namespace.name={namespace}",
    }
