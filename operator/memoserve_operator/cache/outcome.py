"""What the cache step concludes (see ``cache.step``): its own module so that the Memorystore
lifecycle and the status report can share it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.status import CacheStatus
from memoserve_operator.verdict import Verdict


@dataclass(frozen=True)
class CacheOutcome:
    verdict: Verdict
    status: CacheStatus
    endpoint: RedisEndpoint | None = None
    hold: bool = False
    retry_after: float | None = None
