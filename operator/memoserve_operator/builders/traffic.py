"""Where a service's traffic goes: the Services a route sends to, and each one's share.

One function owns the split so that every exposure that can weight traffic (an HTTPRoute's
``backendRefs``) reads it from here. Without a canary, all of it goes to the service's own
Service (named after the InferenceService); with one (spec.canary), the canary's Service
NAME-canary takes canary.trafficPercent and the stable Service the rest. A 0 weight is kept (not
left out): an HTTPRoute backendRef of weight 0 gets no requests, and the route's shape does not
change while a rollout moves the percentage.
"""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_contract.canary import canary_name, traffic_percent
from memoserve_contract.resource.inferenceservice import InferenceService


@dataclass(frozen=True)
class Backend:
    """One Service a route sends to and its weight (percent of requests, 0-100)."""

    service: str
    weight: int


def backends(isvc: InferenceService) -> tuple[Backend, ...]:
    """The Services that share the service's traffic, weights adding up to 100: the stable
    Service first."""
    if isvc.spec.canary is None:
        return (Backend(service=isvc.name, weight=100),)
    canary = traffic_percent(isvc)
    return (
        Backend(service=isvc.name, weight=100 - canary),
        Backend(service=canary_name(isvc), weight=canary),
    )
