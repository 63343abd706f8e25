"""The canary's part of the status (pure): CanaryReady and status.canary.

CanaryReady is a part like the others, so Ready is False while the canary's pods load (Argo CD:
Progressing) and names the canary's failure when they cannot start (a failure reason: Degraded);
the stable pods serve meanwhile, and the message says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.canary import canary_name
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import CanaryStatus, ConditionType
from memoserve_operator.status.observe import in_tier, replica_counts, serving_verdict
from memoserve_operator.verdict import Verdict

Object = Mapping[str, Any]
CANARY_READY = ConditionType.CANARY_READY


def canary_verdict(
    isvc: InferenceService, live: Mapping[tuple[str, str], Object | None], pods: Sequence[Object]
) -> Verdict | None:
    """CanaryReady from NAME-canary's Deployment and pods (None without a canary)."""
    canary = isvc.spec.canary
    if canary is None:
        return None
    found = serving_verdict(live.get(("Deployment", canary_name(isvc))), pods)
    tier = f"canary ({canary.traffic_percent}% of requests)"
    if not found.ok:
        tier += "; the stable version serves the rest"
    return in_tier(tier, Verdict(CANARY_READY, found.status, found.reason, found.message))


def canary_status(
    isvc: InferenceService,
    live: Mapping[tuple[str, str], Object | None],
    stats: CacheStats | None,
) -> CanaryStatus | None:
    """status.canary: its share, its pods, the digest its pods loaded and their hit ratio."""
    canary = isvc.spec.canary
    if canary is None:
        return None
    pods, ready, desired = replica_counts(live.get(("Deployment", canary_name(isvc))))
    percent = stats.hit_percent if stats is not None else None
    return CanaryStatus(
        traffic_percent=canary.traffic_percent,
        replicas=pods,
        ready_replicas=ready,
        replica_summary=f"{ready}/{desired}",
        model_digest=stats.digest if stats is not None else None,
        hit_ratio=f"{percent}%" if percent is not None else None,
    )
