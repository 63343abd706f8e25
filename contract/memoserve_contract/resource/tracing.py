"""spec.tracing: OpenTelemetry traces of the service's requests (docs/tracing.md)."""

from __future__ import annotations

from pydantic import Field

from memoserve_contract.resource.fields import SpecModel


class TracingSpec(SpecModel):
    """Where the pods send their traces and how many they keep; each field unset takes the
    operator's default (MEMOSERVE_OPERATOR_TRACING_*)."""

    enabled: bool = Field(
        default=True, description="false: no traces from this service, whatever the operator's"
    )
    endpoint: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s/]+(:[0-9]{1,5})?/?$",
        description="OTLP/gRPC endpoint, e.g. http://otel-collector.observability:4317 (http: "
        "plaintext, https: TLS)",
    )
    sampling_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of traces started here that are kept (a caller's sampled "
        "traceparent is always followed)",
    )
