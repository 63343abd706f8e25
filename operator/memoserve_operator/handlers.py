"""kopf handlers: decorators only; the work is in ``reconcile.Reconciler``.

- start-up: kopf keeps its progress and diff-base in annotations (the status schema prunes
  unknown fields, so kopf's default ``status.kopf`` would vanish and handlers would re-run
  forever); the Kubernetes client and the reconciler go into kopf's memo; cleanup closes them.
- create / update / resume -> one reconcile, which reads the InferenceService afresh.
- children (every owned kind but Secrets, which the operator may not watch), filtered by the
  managed-by label: an event goes into the ``ChildIndex`` (so reconciles need not read the
  children again) and reconciles the owner, so status follows the Deployment's ready replicas
  and the Ingress's address, and a deleted or hand-edited child is restored at once.
- every InferenceService's watch events also go to one ``Resync`` loop (resync.py), started
  with the operator: it checks each service when due (``Reconciler.due``): every
  ``recheck_seconds`` while not Ready (crash loops, metrics, a refused child), every
  ``resync_seconds`` when settled (e.g. a deleted ``<name>-redis``). One task for all, where a
  kopf timer per service woke every few seconds for nothing.
- delete: every child carries a controller owner reference, so Kubernetes' garbage collector
  deletes them with the InferenceService. The delete handler only lets go of an operator-created
  Memorystore instance (deleted and waited for, or retained, per deletionPolicy); services
  without one (no ``serving.memoserve.dev/memorystore`` finalizer) cost it nothing. kopf puts
  its own finalizer (``serving.memoserve.dev/finalizer``) on each InferenceService because of
  this handler (kopf calls delete handlers only while its own finalizer holds the object), and
  takes it off once it is done.
- Memorystore: the API client is kept in the memo from start-up (opened on first use, so an
  operator without Memorystore services needs no Google credentials) and closed on cleanup.

A reconcile that finds nothing to do makes no write: steady state costs reads only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import kopf

from memoserve_contract.resource.names import GROUP, PLURAL, VERSION, qualified
from memoserve_operator.builders import OWNED_KINDS
from memoserve_operator.builders.meta import MANAGED_BY
from memoserve_operator.cache.connector import MemorystoreConnector
from memoserve_operator.cache.iam_token import tokens_for
from memoserve_operator.cache.lifecycle import MemorystoreStep
from memoserve_operator.cache.record import KopfEvents
from memoserve_operator.cache.stats import CacheStatsReader
from memoserve_operator.children.index import ChildIndex
from memoserve_operator.kube.client import KubeClient, KubeError, resource_of
from memoserve_operator.metrics import Metrics
from memoserve_operator.preflight import ModelPreflight
from memoserve_operator.reconcile import ReconcileOutcome, Reconciler
from memoserve_operator.resync import Resync, retry_delay
from memoserve_operator.settings import OperatorSettings

WORKER_LIMIT = 64
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = qualified("finalizer")
    settings.posting.level = logging.WARNING  # Kubernetes Events for problems only
    # At most this many objects in processing at once. kopf's default is no limit: a burst
    # (a thousand services applied at once, and their children's events) then held every
    # event body, patch and handler frame at the same time, and the heap never shrank back.
    # Beyond the limit, events wait in the watch stream, not in memory.
    settings.queueing.worker_limit = WORKER_LIMIT
    operator_settings = memo.get("settings") or OperatorSettings.from_env(os.environ)
    memo.kube = await KubeClient.open()  # the same sources as kopf's own login
    memo.memorystore = MemorystoreConnector(operator_settings)
    step = MemorystoreStep(memo.memorystore, memo.kube, KopfEvents())
    metrics = memo.get("metrics") or Metrics()
    memo.children = ChildIndex(WATCHED_KINDS)
    memo.reconciler = Reconciler(
        memo.kube,
        operator_settings,
        metrics,
        memorystore=step,
        index=memo.children,
        stats=(
            CacheStatsReader(
                interval=operator_settings.cache_stats_seconds,
                tokens=tokens_for(operator_settings),
            )
            if operator_settings.cache_stats_seconds > 0
            else None
        ),
        preflight=ModelPreflight(operator_settings) if operator_settings.model_preflight else None,
    )
    memo.resync = Resync(memo.reconciler)
    memo.resync_task = asyncio.create_task(memo.resync.run(), name="memoserve-resync")


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    if (task := memo.get("resync_task")) is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if (kube := memo.get("kube")) is not None:
        await kube.close()
    if (memorystore := memo.get("memorystore")) is not None:
        await memorystore.close()


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
async def reconcile_service(
    body: kopf.Body, namespace: str | None, name: str, reason: str, memo: Any, **_: Any
) -> None:
    outcome = await _reconcile(memo, namespace or "", name, str(reason))
    if outcome.result == "apply_failed":  # an Event for kubectl describe; the resync retries
        kopf.warn(body, reason="ApplyFailed", message=outcome.message)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def release_cache(body: kopf.Body, memo: Any, **_: Any) -> None:
    try:
        delay = await memo.reconciler.release(dict(body))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=retry_delay(exc)) from exc
    if delay is not None:
        raise kopf.TemporaryError("waiting for the Memorystore instance to go", delay=delay)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def service_seen(body: kopf.Body, type: str | None, memo: Any, **_: Any) -> None:
    memo.resync.observe(type, body)


async def child_changed(body: kopf.Body, type: str | None, memo: Any, **_: Any) -> None:
    memo.children.observe(type, body)
    if type is not None:  # None: kopf's initial listing; resume handlers cover start-up
        await memo.reconciler.reconcile_owner(body)


# No list/watch on Secrets (rbac.yaml): reconciles read the one Secret, the resync loop too.
WATCHED_KINDS = frozenset(kind for _, kind in OWNED_KINDS if kind != "Secret")
for _api_version, _kind in OWNED_KINDS:
    if _kind in WATCHED_KINDS:
        _child = resource_of(_api_version, _kind)
        kopf.on.event(
            group=_child.group, version=_child.version, plural=_child.plural, labels=MANAGED
        )(child_changed)


async def _reconcile(memo: Any, namespace: str, name: str, trigger: str) -> ReconcileOutcome:
    """One reconcile; an API error (status unwritten) or a wait becomes kopf.TemporaryError."""
    try:
        outcome: ReconcileOutcome = await memo.reconciler.reconcile(
            namespace, name, trigger=trigger
        )
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=retry_delay(exc)) from exc
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(f"reconcile: {outcome.result}", delay=outcome.retry_after)
    return outcome
