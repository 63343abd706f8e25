"""The Memorystore lifecycle, one look per reconcile, for every engine (Memorystore for Redis,
for Valkey, for Redis Cluster: ``engine.Engine``): it never waits and never creates twice.

``resolve`` (an owned source: memorystore | valkey | redisCluster, or an existing* one) ->
``CacheOutcome``:

- no instance yet: record it on the InferenceService (``record``), ask for it and
  come back later (CacheCreating; the Deployment is held back). A restarted operator finds the
  instance by its deterministic name, or the failed operation in ``status.cache.operation``.
- an instance that is someone else's is never touched (CacheNotOwned);
- reachable: the endpoint for the ``<name>-redis`` Secret. In-place changes go out with an
  update mask (or an upgrade); changes only a new instance can have are reported
  (CacheRecreateRequired) while the old instance keeps serving;
- API errors: CacheReady=False with the API's code and message, retried with backoff when
  retrying can help (``pace``); the endpoint that last worked stays in use. A create refused
  for a reason the engine recognises (no service connection policy) gets a reason of its own.

``release`` deletes (Delete) or leaves (Retain) the recorded instance, when the InferenceService
is deleted or the spec no longer asks for an operator-created instance (``release_stale``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import CacheStatus
from memoserve_operator.cache.changes import recreate_message
from memoserve_operator.cache.connector import MemorystoreConnector
from memoserve_operator.cache.engine import Engine
from memoserve_operator.cache.engines import engines_of
from memoserve_operator.cache.gcp import InstanceApi, MemorystoreError
from memoserve_operator.cache.naming import existing_name
from memoserve_operator.cache.operation import REFUSED, look
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.cache.pace import MemorystoreOutcome, Pacer
from memoserve_operator.cache.record import EventSink, Record, Ref, write_record
from memoserve_operator.cache.release import Releaser
from memoserve_operator.cache.verdicts import (
    CACHE,
    CONFIG_ERROR,
    CREATING,
    CREATING_STATE,
    NOT_FOUND,
    NOT_OWNED,
    RECREATE_REQUIRED,
    UPDATING,
    Judge,
    reachable,
)
from memoserve_operator.kube.client import KubeClient
from memoserve_operator.verdict import Verdict


class MemorystoreStep:
    """Lives in kopf's memo next to the reconciler (which serialises calls per service)."""

    def __init__(
        self,
        connector: MemorystoreConnector,
        kube: KubeClient,
        events: EventSink,
        pacer: Pacer | None = None,
    ) -> None:
        self.connector, self.kube, self.events = connector, kube, events
        self.engines = engines_of(connector)
        self.pacer = pacer or Pacer(connector.settings)
        self.releaser = Releaser(self.engines, connector.settings, kube, events)
        self.judge = Judge()

    def engine_for(self, source: str) -> Engine | None:
        """The engine of an owned or existing* source (None: not a Memorystore source)."""
        return next((e for e in self.engines.values() if source in (e.key, e.existing)), None)

    async def release(self, ref: Ref, meta: Mapping[str, Any]) -> float | None:
        """The InferenceService is being deleted: when to look again (None: done)."""
        self.pacer.forget(ref.key)
        self.judge.forget(ref.key)
        return await self.releaser.release(ref, meta)

    async def release_stale(
        self, isvc: InferenceService, meta: Mapping[str, Any], outcome: CacheOutcome
    ) -> CacheOutcome:
        """Let go of a recorded instance the spec no longer asks for (another source or
        engine)."""
        record = Record.read(meta)
        source = isvc.spec.cache.source if isvc.spec.cache is not None else None
        if record is None or source == record.engine:
            return outcome
        ref = Ref(isvc.namespace, isvc.name, isvc.metadata.uid)
        engine = self.engine_for(source or "")
        keep = outcome.status.name if engine is not None and engine.existing == source else None
        delay = await self.releaser.release(ref, meta, keep)
        if delay is None:
            return outcome
        note = f"letting go of the previous Memorystore instance {record.name}"
        retry = min(d for d in (outcome.retry_after, delay) if d is not None)
        status = outcome.status.model_copy(update={"message": note})
        return dataclasses.replace(outcome, retry_after=retry, status=status)

    async def resolve(
        self, isvc: InferenceService, meta: Mapping[str, Any], old: CacheStatus | None
    ) -> CacheOutcome:
        ref, cache = Ref(isvc.namespace, isvc.name, isvc.metadata.uid), isvc.spec.cache
        assert cache is not None
        assert cache.source is not None
        engine = self.engine_for(cache.source)
        assert engine is not None  # cache.step sends Memorystore sources only
        digest = hashlib.sha256(cache.model_dump_json().encode()).hexdigest()  # the spec
        if (known := self.pacer.skip(ref.key, digest)) is not None:
            return known
        try:
            api = await engine.api()
            if (name := engine.existing_name(cache)) is not None:
                result = await self._existing(engine, api, ref, name)
            else:
                result = await self._owned(engine, api, isvc, ref, meta, old)
        except MemorystoreError as exc:
            name = old.name if old else None
            result = self.judge.failed(
                ref, cache.source, exc.code, exc.message, name, exc.retryable
            )
        if result.outcome.status.engine is None:
            result = _with_status(result, engine.status_fields(None))
        verdict = result.outcome.verdict
        previous = self.pacer.previous(ref.key)
        if result.kind == "failed" and (previous is None or previous.verdict != verdict):
            self.events.post(ref, "Warning", verdict.reason, verdict.message)
        return self.pacer.record(ref.key, digest, result)

    async def _serving(
        self,
        engine: Engine,
        api: InstanceApi[Any],
        ref: Ref,
        source: str,
        instance: Any,
        operation: str | None = None,
    ) -> MemorystoreOutcome:
        found = await engine.endpoint(api, instance) if reachable(instance) else None
        if source == engine.existing:
            reason, note = engine.existing_reason, "shared; memoserve never changes it"
        else:
            reason, note = engine.ready_reason, "created by memoserve"
        serving = self.judge.serving(ref, source, instance, found, reason, note, operation)
        return _with_status(serving, engine.status_fields(instance))

    async def _existing(
        self, engine: Engine, api: InstanceApi[Any], ref: Ref, name: str
    ) -> MemorystoreOutcome:
        source = engine.existing
        if not name.startswith("projects/"):
            where = engine.where(None, self.connector.settings, api.default_project)
            if isinstance(where, str):
                return self.judge.failed(ref, source, CONFIG_ERROR, where, name, retryable=False)
            name = existing_name(name, where)
        instance = await api.get_instance(name)
        if instance is None:
            return self.judge.failed(ref, source, NOT_FOUND, f"{name} does not exist", name)
        return await self._serving(engine, api, ref, source, instance)

    async def _owned(
        self,
        engine: Engine,
        api: InstanceApi[Any],
        isvc: InferenceService,
        ref: Ref,
        meta: Mapping[str, Any],
        old: CacheStatus | None,
    ) -> MemorystoreOutcome:
        assert isvc.spec.cache is not None
        spec, source = engine.spec(isvc.spec.cache), engine.key
        where = engine.where(spec, self.connector.settings, api.default_project)
        if isinstance(where, str):
            return self.judge.failed(ref, source, CONFIG_ERROR, where, None, retryable=False)
        desired = engine.desired(isvc, spec, where)
        record = Record.read(meta)
        if record is not None and record.engine != engine.key:
            # Another engine's instance: one record holds one instance, so it goes first
            # (release_stale, in this same reconcile), then this one is created.
            message = (
                f"letting go of the previous instance {record.name} first (deletionPolicy "
                f"{record.deletion_policy}); then {desired.name} is created"
            )
            status = CacheStatus(source=source, name=desired.name, state="PENDING")
            verdict = Verdict.false(CACHE, CREATING, message)
            return MemorystoreOutcome("waiting", CacheOutcome(verdict, status, hold=True))
        failure, pending = await look(api, old.operation if old else None)
        instance = await api.get_instance(record.name if record else desired.name)
        if instance is None and record is not None and record.name != desired.name:
            instance = await api.get_instance(desired.name)  # the recorded one is gone
        if instance is None:
            if failure is not None:
                return self._refused(engine, ref, failure, desired)
            return await self._create(engine, api, ref, meta, desired, where.parent, spec)
        recorded = record is not None and record.name == instance.name
        if (why := engine.not_owned(instance, ref.uid, recorded)) is not None:
            return self.judge.failed(ref, source, NOT_OWNED, why, instance.name)
        wanted = Record(instance.name, engine.deletion_policy(spec), engine.key)
        if record != wanted:
            await write_record(self.kube, ref, meta, wanted)  # adopted, or a new policy
        serving = await self._serving(engine, api, ref, source, instance, pending)
        if failure is not None:  # an update or upgrade failed; the instance serves as it is
            usable = serving.outcome.endpoint
            return self.judge.failed(
                ref, source, failure.code, failure.message, instance.name, failure.retryable, usable
            )
        if serving.kind != "ready":
            return serving
        return await self._converge(engine, api, ref, desired, instance, serving.outcome)

    def _refused(
        self, engine: Engine, ref: Ref, exc: MemorystoreError, desired: Any
    ) -> MemorystoreOutcome:
        """A create refused, at once or by its operation: the engine's own verdict when it
        recognises the cause, else the API's code and message."""
        own = engine.refused(exc, desired)
        reason, message = (own.reason, own.message) if own else (exc.code, exc.message)
        return self.judge.failed(ref, engine.key, reason, message, desired.name, exc.retryable)

    async def _create(
        self,
        engine: Engine,
        api: InstanceApi[Any],
        ref: Ref,
        meta: Mapping[str, Any],
        desired: Any,
        parent: str,
        spec: Any,
    ) -> MemorystoreOutcome:
        record = Record(desired.name, engine.deletion_policy(spec), engine.key)
        meta = await write_record(self.kube, ref, meta, record)  # before the call: no leak
        instance_id = desired.name.rsplit("/", 1)[1]
        try:
            operation = await api.create_instance(parent, instance_id, desired)
        except MemorystoreError as exc:
            if exc.code in REFUSED:  # surely nothing was created: no finalizer meanwhile
                await write_record(self.kube, ref, meta, None)
            if engine.refused(exc, desired) is None:
                raise
            return self._refused(engine, ref, exc, desired)
        what = engine.describe(desired)
        self.events.post(ref, "Normal", "MemorystoreCreate", f"creating {what}")
        status = CacheStatus(
            source=engine.key,
            name=desired.name,
            state=CREATING_STATE,
            operation=operation,
            **engine.status_fields(desired),
        )
        verdict = Verdict.false(CACHE, CREATING, f"creating {what}; this takes minutes")
        return MemorystoreOutcome("waiting", CacheOutcome(verdict, status, hold=True))

    async def _converge(
        self,
        engine: Engine,
        api: InstanceApi[Any],
        ref: Ref,
        desired: Any,
        instance: Any,
        ready: CacheOutcome,
    ) -> MemorystoreOutcome:
        """Apply in-place changes; report those that need a new instance."""
        changes = engine.compare(desired, instance)
        operation = None
        if changes.update:
            target = engine.update_target(desired, instance, changes.update)
            operation = await api.update_instance(target, changes.update)
            what = f"updating {instance.name}: {changes.summary}"
            self.events.post(ref, "Normal", "MemorystoreUpdate", what)
        elif changes.upgrade:
            operation = await engine.upgrade(api, instance.name, changes.upgrade)
            what = f"upgrading {instance.name} to {changes.upgrade}"
            self.events.post(ref, "Normal", "MemorystoreUpgrade", what)
        status = ready.status
        if operation is not None:
            status = status.model_copy(update={"operation": operation, "state": "UPDATING"})
        if changes.recreate:
            message = recreate_message(changes, instance.name, engine.gcloud)
            verdict = Verdict.false(CACHE, RECREATE_REQUIRED, message)
            return MemorystoreOutcome("failed", CacheOutcome(verdict, status, ready.endpoint))
        if operation is not None:
            verdict = Verdict.false(CACHE, UPDATING, what)
            return MemorystoreOutcome("waiting", CacheOutcome(verdict, status, ready.endpoint))
        return MemorystoreOutcome("ready", ready)


def _with_status(result: MemorystoreOutcome, fields: Mapping[str, Any]) -> MemorystoreOutcome:
    status = result.outcome.status.model_copy(update=dict(fields))
    return dataclasses.replace(result, outcome=dataclasses.replace(result.outcome, status=status))
