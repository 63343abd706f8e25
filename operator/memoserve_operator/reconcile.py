"""One reconcile of one InferenceService: parse -> cache -> build -> apply/prune -> status.

Level-based: whatever triggered it (create, update, resume, a child's event, the resync loop),
a reconcile reads the InferenceService afresh and makes the world match it:

1. parse once (``InferenceService.from_body``); a spec the CRD should have refused gets
   Ready=False/InvalidSpec (a failure for health.lua, no retry) and nothing else is touched;
2. the cache step (``cache.step.resolve_cache``: external Redis, or the Memorystore lifecycle);
3. ``build_all``, each object stamped with its digest (``compare.stamp``);
4. ``children.sync_children``: apply only what differs, prune what is no longer wanted (a
   promoted canary and the route stay until the stable pods run it: ``children.promotion``);
5. ``report.build_status`` from the live children, written (merge patch on /status) only when
   it differs from the stored status other than in lastTransitionTime.

Steady state (nothing changed anywhere) makes reads only, never a write.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.canary import canary_name, canary_stats_namespace
from memoserve_contract.pod_settings import cache_namespace, model_tier_name
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.names import API_VERSION, KIND
from memoserve_contract.resource.status import ConditionType, InferenceServiceStatus
from memoserve_operator.builders import build_all
from memoserve_operator.builders.meta import canary_selector, model_selector, selector
from memoserve_operator.cache.lifecycle import MemorystoreStep
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.cache.record import Ref
from memoserve_operator.cache.stats import CacheStatsReader, with_refusal
from memoserve_operator.cache.step import resolve_cache
from memoserve_operator.children.compare import stamp
from memoserve_operator.children.index import ChildIndex
from memoserve_operator.children.promotion import promotion_hold
from memoserve_operator.children.sync import owner_of, sync_children
from memoserve_operator.grpc_tls.step import GrpcTlsStep
from memoserve_operator.kube.client import KubeClient, KubeError, resource_of
from memoserve_operator.metrics import Metrics
from memoserve_operator.preflight import FOUND, ModelPreflight
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.status.conditions import comparable, set_condition, timestamp
from memoserve_operator.status.observe import replica_counts
from memoserve_operator.status.report import build_status, needs_pods, status_patch
from memoserve_operator.verdict import Verdict

Object = dict[str, Any]
ISVC = resource_of(API_VERSION, KIND)
POD = resource_of("v1", "Pod")
# While the cache endpoint is unknown, these are neither applied nor pruned: pods must not start
# against a Secret that does not exist, and a working Secret must not go meanwhile.
HELD_KINDS = frozenset({"Deployment", "Secret"})
# While the model preflight finds no model the pods could read, no pods are rolled out for it;
# a Deployment that exists keeps serving what it serves.
PREFLIGHT_HELD = frozenset({"Deployment"})


@dataclass(frozen=True)
class ReconcileOutcome:
    """ok | waiting | invalid | apply_failed | gone.

    ``retry_after``: ask kopf to come back that soon. A refused child is not retried this way:
    its part of the status says ApplyFailed and the resync loop tries again while the service
    is not Ready, so a kopf retry never holds back the handling of the next spec change.
    """

    result: str
    retry_after: float | None = None
    message: str = ""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Reconciler:
    """Reconciles InferenceServices, one reconcile at a time per object; lives in kopf's memo."""

    def __init__(
        self,
        kube: KubeClient,
        settings: OperatorSettings,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime.datetime] = _utcnow,
        memorystore: MemorystoreStep | None = None,
        index: ChildIndex | None = None,
        stats: CacheStatsReader | None = None,
        preflight: ModelPreflight | None = None,
    ) -> None:
        # The gRPC TLS key and certificate: made and kept per service (grpc_tls/step.py).
        self.grpc_tls = GrpcTlsStep(kube, clock=clock)
        self.kube, self.settings, self.metrics, self._clock = kube, settings, metrics, clock
        self.memorystore = memorystore
        self.index = index
        self.stats = stats
        self.preflight = preflight
        self._locks: dict[str, asyncio.Lock] = {}
        self._queued: set[str] = set()
        self._last_run: dict[str, float] = {}

    async def reconcile(self, namespace: str, name: str, *, trigger: str) -> ReconcileOutcome:
        key = f"{namespace}/{name}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            self._queued.discard(key)
            loop = asyncio.get_running_loop()
            started, result = loop.time(), "api_error"
            try:
                body = await self.kube.get(ISVC, namespace, name)
                deleting = body is not None and body["metadata"].get("deletionTimestamp")
                outcome = (
                    ReconcileOutcome("gone") if body is None or deleting else await self._run(body)
                )
                result = outcome.result
            except KubeError as exc:
                self.metrics.errors.labels(str(exc.status)).inc()
                raise
            finally:
                self._last_run[key] = loop.time()  # failed or not: the resync waits its turn
                self.metrics.reconciles.labels(trigger, result).inc()
                self.metrics.duration.observe(loop.time() - started)
        if outcome.result == "gone" and not lock.locked():
            self._locks.pop(key, None)
            self._last_run.pop(key, None)
            self.grpc_tls.forget(namespace, name)
            if self.preflight is not None:
                self.preflight.forget(namespace, name)
        return outcome

    async def release(self, body: Object) -> float | None:
        """The InferenceService is being deleted: let go of its Memorystore instance, if it has
        one (Delete or Retain); when to look again, None when done."""
        meta = body.get("metadata") or {}
        if self.memorystore is None:
            return None
        ref = Ref.of(meta)
        lock = self._locks.setdefault(ref.key, asyncio.Lock())
        async with lock:
            delay = await self.memorystore.release(ref, meta)
        if delay is None and not lock.locked():
            self._locks.pop(ref.key, None)
        return delay

    async def reconcile_owner(self, child: Object) -> None:
        """A child changed: reconcile its InferenceService. Events that come while one such
        reconcile waits for the lock are covered by it (it reads everything afresh)."""
        owner = owner_of(child)
        if owner is None or f"{owner[0]}/{owner[1]}" in self._queued:
            return
        self._queued.add(f"{owner[0]}/{owner[1]}")
        await self.reconcile(*owner, trigger="child")

    def due(self, namespace: str, name: str, body: Object) -> bool:
        """For the resync loop, without an API call: checked recently enough, or not."""
        status = body.get("status") or {}
        conditions: list[Object] = status.get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), {})
        generation = (body.get("metadata") or {}).get("generation")
        settled = ready.get("status") == "True" and status.get("observedGeneration") == generation
        every = self.settings.resync_seconds if settled else self.settings.recheck_seconds
        last = self._last_run.get(f"{namespace}/{name}")
        return last is None or asyncio.get_running_loop().time() - last >= every

    async def _run(self, body: Object) -> ReconcileOutcome:
        try:
            old = InferenceServiceStatus.model_validate(body.get("status") or {})
        except ValidationError:
            old = InferenceServiceStatus()
        now = self._clock()
        try:
            isvc = InferenceService.from_body({k: v for k, v in body.items() if k != "status"})
        except ValidationError as exc:
            await self._invalid(body, old, exc, timestamp(now))
            return ReconcileOutcome("invalid")
        cache = await resolve_cache(
            isvc, self.settings, memorystore=self.memorystore, meta=body["metadata"], old=old.cache
        )
        model = await self.preflight.check(isvc) if self.preflight is not None else FOUND
        held = (HELD_KINDS if cache.hold else frozenset()) | (
            PREFLIGHT_HELD if model.hold else frozenset()
        )
        grpc_tls = await self.grpc_tls.material(isvc) if isvc.spec.grpc_through_ingress else None
        desired = [
            stamp(obj)
            for obj in build_all(isvc, self.settings, redis=cache.endpoint, grpc_tls=grpc_tls)
            if obj["kind"] not in held
        ]
        hold = await promotion_hold(self.kube, self.index, isvc, desired)
        children = await sync_children(
            self.kube,
            self.metrics,
            isvc,
            hold.desired,
            field_manager=self.settings.field_manager,
            keep=held | hold.kinds,
            index=self.index,
        )
        for route in hold.routes:  # kept as it is: the status reads its verdict and URL
            children.live[route["kind"], route["metadata"]["name"]] = route
        deployment = children.live.get(("Deployment", isvc.name))
        pods = await self._pods(isvc, deployment, selector(isvc))
        model_pods = []
        if isvc.spec.split:
            tier = children.live.get(("Deployment", model_tier_name(isvc)))
            model_pods = await self._pods(isvc, tier, model_selector(isvc))
        canary_pods: list[Object] = []
        canary_stats: CacheStats | None = None
        if isvc.spec.canary is not None:
            canary = children.live.get(("Deployment", canary_name(isvc)))
            canary_pods = await self._pods(isvc, canary, canary_selector(isvc))
            canary_stats = await self._cache_stats(
                isvc, cache, canary, canary_stats_namespace(isvc)
            )
        stats = await self._cache_stats(isvc, cache, deployment, cache_namespace(isvc))
        if self.stats is not None:
            cache = with_refusal(cache, self.stats.refused(cache_namespace(isvc)))
        status = build_status(
            isvc,
            cache,
            children.live,
            pods,
            children.failures,
            old,
            now,
            stats=stats,
            model=model,
            model_pods=model_pods,
            canary_pods=canary_pods,
            canary_stats=canary_stats,
        )
        await self._write_status(isvc.namespace, isvc.name, old, status)
        if children.failures:
            return ReconcileOutcome(
                "apply_failed", message=str(next(iter(children.failures.values())))
            )
        ready = status.condition(ConditionType.READY)
        result = "ok" if ready is not None and ready.status == "True" else "waiting"
        return ReconcileOutcome(result, cache.retry_after)

    async def _pods(
        self, isvc: InferenceService, deployment: Object | None, labels: str
    ) -> list[Object]:
        """A Deployment's pods, read only while it is not all ready (their words say why)."""
        if not needs_pods(deployment):
            return []
        return await self.kube.list(POD, isvc.namespace, labels)

    async def _cache_stats(
        self,
        isvc: InferenceService,
        cache: CacheOutcome,
        deployment: Object | None,
        namespace: str,
    ) -> CacheStats | None:
        """The cache counts the pods of ``deployment`` publish under ``namespace``, while they
        serve and their Redis is one whose secrets the operator holds (see cache.stats)."""
        spec = isvc.spec.cache
        if self.stats is None or cache.endpoint is None or spec is None:
            return None
        if spec.external is not None and spec.external.password_secret_ref is not None:
            return None
        if replica_counts(deployment)[1] == 0:
            return None
        pods = isvc.spec.service_account
        account = pods.gcp_service_account if pods is not None else None
        return await self.stats.read(namespace, cache.endpoint, account=account)

    async def _invalid(
        self, body: Object, old: InferenceServiceStatus, exc: ValidationError, now: str
    ) -> None:
        """Ready=False/InvalidSpec, naming the first problem; the children stay as they are."""
        meta = body.get("metadata") or {}
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        verdict = Verdict.false(ConditionType.READY, "InvalidSpec", f"{where}: {first['msg']}")
        generation = meta.get("generation")
        conditions = set_condition(old.conditions, verdict, generation=generation, now=now)
        new = old.model_copy(update={"observed_generation": generation, "conditions": conditions})
        await self._write_status(meta.get("namespace", ""), meta.get("name", ""), old, new)

    async def _write_status(
        self, namespace: str, name: str, old: InferenceServiceStatus, new: InferenceServiceStatus
    ) -> None:
        if comparable(new) == comparable(old):
            return
        await self.kube.patch_status(ISVC, namespace, name, status_patch(new))
        self.metrics.writes.labels("status", KIND).inc()
