"""Which requests start a trace: decided before OpenTelemetry's SDK is asked.

The SDK decides by creating a span: ~6 µs of CPU even for a request it then drops, which is
15 % of a cache hit (docs/performance.md, "Traces"). For the standard samplers
(``OTEL_TRACES_SAMPLER`` = always_on, always_off, traceidratio, or their parentbased_ forms)
the server draws the root decision itself, before any span exists, and gives the SDK a sampler
that keeps what it is handed (a parent's decision still rules where the sampler is parent-based).
Any other sampler (an entry point of another package) is left to the SDK, at the SDK's cost.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_RATIOS = {"always_on": 1.0, "always_off": 0.0}


@dataclass(frozen=True, slots=True)
class RootSampling:
    """The share of traces started here that are kept, and whether a caller's decision
    (a sampled or unsampled ``traceparent``) is followed instead."""

    ratio: float
    parent_based: bool

    def starts_trace(self, has_parent: bool) -> bool | None:
        """True/False: this request's trace is kept or not; None: the caller's decision
        (its traceparent) rules, the SDK follows it."""
        if has_parent and self.parent_based:
            return None
        return self.ratio >= 1.0 or random.random() < self.ratio

    def sdk_sampler(self) -> Any:
        """The SDK's sampler once the root decision is made here: keep every span it is asked
        to make (under a parent-based sampler, a caller's decision first)."""
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

        return ParentBased(ALWAYS_ON) if self.parent_based else ALWAYS_ON


def root_sampling(environ: Mapping[str, str]) -> RootSampling | None:
    """The standard sampler the variables name, or None: another one, left to the SDK."""
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    parent_based = name.startswith("parentbased_")
    base = name.removeprefix("parentbased_")
    if base in _RATIOS:
        return RootSampling(_RATIOS[base], parent_based)
    if base != "traceidratio":
        return None
    try:
        ratio = float(environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    except ValueError:
        ratio = 1.0  # what the SDK does with an argument it cannot read
    return RootSampling(min(max(ratio, 0.0), 1.0), parent_based)
