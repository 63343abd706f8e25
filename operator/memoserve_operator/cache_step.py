"""The cache step of a reconcile: where the service's Redis is, and whether it is ready.

This is the seam for the Memorystore lifecycle. ``resolve_cache`` runs before anything is
built; its ``CacheOutcome`` says

- ``endpoint``: the ``RedisEndpoint`` that ``build_all`` writes into the ``<name>-redis``
  Secret (for ``external`` it comes from the spec, so None is fine there);
- ``hold``: the service needs an endpoint nobody knows yet (a Memorystore instance still
  being created): the reconcile then neither applies nor prunes the Deployment and the Secret,
  so pods never start against a Secret that does not exist and a working Secret is never
  deleted meanwhile;
- ``retry_after``: come back in that many seconds (kopf.TemporaryError), e.g. while an
  instance is CREATING; never sleep;
- ``verdict`` / ``status``: the CacheReady condition and ``status.cache`` (the CACHE column).

Today only ``external`` Redis is handled. ``memorystore`` and ``existingMemorystore`` get
CacheReady=False with reason ``MemorystoreNotSupportedError``: the suffix makes Argo CD's
health check (manifests/argocd/health.lua) report Degraded rather than Progressing forever,
which is the truth: no amount of waiting makes this operator version create an instance. The
Memorystore issue replaces ``_memorystore`` with the real lifecycle (create, poll, read AUTH
string and CA, return the endpoint) and keeps this contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_operator.builders import RedisEndpoint
from memoserve_operator.builders.redis import external_endpoint
from memoserve_operator.conditions import Verdict
from memoserve_operator.resource import InferenceService
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.status import CacheStatus, ConditionType

CACHE = ConditionType.CACHE_READY
MEMORYSTORE_NOT_SUPPORTED = "MemorystoreNotSupportedError"


@dataclass(frozen=True)
class CacheOutcome:
    verdict: Verdict
    status: CacheStatus
    endpoint: RedisEndpoint | None = None
    hold: bool = False
    retry_after: float | None = None


async def resolve_cache(isvc: InferenceService, settings: OperatorSettings) -> CacheOutcome:
    """The cache step: find (later: create) the service's Redis."""
    cache = isvc.spec.cache
    source = cache.source if cache is not None else None
    if source is None:
        return CacheOutcome(
            Verdict.true(CACHE, "CacheOff", "no cache: every request runs the model"),
            CacheStatus(state="OFF"),
        )
    if source == "external":
        endpoint = external_endpoint(isvc)
        assert endpoint is not None  # source "external" has spec.cache.external
        return CacheOutcome(
            Verdict.true(
                CACHE,
                "ExternalRedis",
                f"{endpoint.url} (not managed by memoserve; pods serve uncached while it is "
                "unreachable)",
            ),
            CacheStatus(source=source, host=endpoint.host, port=endpoint.port, state="EXTERNAL"),
            endpoint=endpoint,
        )
    return await _memorystore(isvc, settings, source)


async def _memorystore(
    isvc: InferenceService, settings: OperatorSettings, source: str
) -> CacheOutcome:
    """Memorystore is not implemented yet: say so, hold the Deployment back, do not retry
    (a spec change re-runs the reconcile)."""
    cache = isvc.spec.cache
    name = cache.existing_memorystore.name if cache and cache.existing_memorystore else isvc.name
    return CacheOutcome(
        Verdict.false(
            CACHE,
            MEMORYSTORE_NOT_SUPPORTED,
            f"spec.cache.{source} is not supported by this operator version yet; use "
            "spec.cache.external (e.g. with the instance's host and AUTH Secret)",
        ),
        CacheStatus(source=source, name=name, state="UNSUPPORTED"),
        hold=True,
    )
