"""The cache step of a reconcile: where the service's Redis is, and whether it is ready.

``resolve_cache`` runs before anything is built; its ``CacheOutcome`` says

- ``endpoint``: the ``RedisEndpoint`` that ``build_all`` writes into the ``<name>-redis``
  Secret (for ``external`` it comes from the spec, so None is fine there);
- ``hold``: the service needs an endpoint nobody knows yet (a Memorystore instance still
  being created): the reconcile then neither applies nor prunes the Deployment and the Secret,
  so pods never start against a Secret that does not exist and a working Secret is never
  deleted meanwhile;
- ``retry_after``: come back in that many seconds (kopf.TemporaryError), e.g. while an
  instance is CREATING; never sleep;
- ``verdict`` / ``status``: the CacheReady condition and ``status.cache`` (the CACHE column).

``external`` and no cache are answered here; the Memorystore sources (``memorystore``,
``valkey``, ``redisCluster`` and their ``existing*``) by ``lifecycle.MemorystoreStep``, one
lifecycle for the three engines (``engine.Engine``).
Whatever the source, an operator-created instance the spec no longer asks for is let go of
per its deletionPolicy (``MemorystoreStep.release_stale``), whatever its engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memoserve_contract.redis_endpoint import external_endpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import CacheStatus, ConditionType
from memoserve_operator.cache.lifecycle import MemorystoreStep
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.cache.verdicts import CONFIG_ERROR
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.verdict import Verdict

CACHE = ConditionType.CACHE_READY


async def resolve_cache(
    isvc: InferenceService,
    settings: OperatorSettings,
    *,
    memorystore: MemorystoreStep | None = None,
    meta: Mapping[str, Any] | None = None,
    old: CacheStatus | None = None,
) -> CacheOutcome:
    """The cache step: find, create or update the service's Redis.

    ``meta``: the InferenceService's metadata as read (finalizers and annotations record an
    operator-created instance); ``old``: status.cache as last written (the pending operation).
    """
    outcome = await _resolve(isvc, memorystore, meta or {}, old)
    if memorystore is not None and meta:
        outcome = await memorystore.release_stale(isvc, meta, outcome)
    return outcome


async def _resolve(
    isvc: InferenceService,
    memorystore: MemorystoreStep | None,
    meta: Mapping[str, Any],
    old: CacheStatus | None,
) -> CacheOutcome:
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
    if memorystore is None:
        return CacheOutcome(
            Verdict.false(CACHE, CONFIG_ERROR, "this reconciler has no Memorystore client"),
            CacheStatus(source=source, state="ERROR"),
            hold=True,
        )
    return await memorystore.resolve(isvc, meta, old)
