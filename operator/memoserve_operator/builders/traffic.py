"""Where a service's traffic goes: the Services a route sends to, and each one's share.

One function owns the split so that every exposure that can weight traffic (an HTTPRoute's
``backendRefs``) reads it from here. Without a canary, all of it goes to the service's own
Service (named after the InferenceService).
"""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_contract.resource.inferenceservice import InferenceService


@dataclass(frozen=True)
class Backend:
    """One Service a route sends to and its weight (percent of requests, 0-100)."""

    service: str
    weight: int


def backends(isvc: InferenceService) -> tuple[Backend, ...]:
    """The Services that share the service's traffic, weights adding up to 100."""
    return (Backend(service=isvc.name, weight=100),)
