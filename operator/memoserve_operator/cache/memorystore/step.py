"""The Memorystore lifecycle, one look per reconcile: it never waits and never creates twice.

``resolve`` (spec.cache.memorystore or existingMemorystore) -> ``CacheOutcome``:

- no instance yet: record it on the InferenceService (``record``), ask for it and
  come back later (CacheCreating; the Deployment is held back). A restarted operator finds the
  instance by its deterministic name, or the failed operation in ``status.cache.operation``.
- an instance whose labels name someone else is never touched (CacheNotOwned);
- READY: the endpoint (host, port, AUTH string, server CA) for the ``<name>-redis`` Secret.
  In-place changes go out with an update mask (or an upgrade); changes only a new instance can
  have are reported (CacheRecreateRequired) while the old instance keeps serving;
- API errors: CacheReady=False with the API's code and message, retried with backoff when
  retrying can help (``pace``); the endpoint that last worked stays in use.

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
from memoserve_operator.cache.memorystore.api import (
    Instance,
    MemorystoreApi,
    MemorystoreError,
    State,
)
from memoserve_operator.cache.memorystore.connector import MemorystoreConnector
from memoserve_operator.cache.memorystore.pace import MemorystoreOutcome, Pacer
from memoserve_operator.cache.memorystore.plan import (
    Location,
    compare,
    desired_instance,
    existing_name,
    location,
    not_owned,
    update_target,
)
from memoserve_operator.cache.memorystore.record import EventSink, Record, Ref, write_record
from memoserve_operator.cache.memorystore.release import Releaser
from memoserve_operator.cache.memorystore.verdicts import (
    CACHE,
    CONFIG_ERROR,
    CREATING,
    EXISTING,
    NOT_FOUND,
    NOT_OWNED,
    OWNED,
    RECREATE_REQUIRED,
    UPDATING,
    Judge,
)
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.kube.client import KubeClient
from memoserve_operator.verdict import Verdict

# Answers to a create that mean it was not accepted (unlike a timeout, after which it may have).
REFUSED = frozenset(
    {
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
        "NOT_FOUND",
        "UNIMPLEMENTED",
    }
)


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
        self.pacer = pacer or Pacer(connector.settings)
        self.releaser = Releaser(connector, kube, events)
        self.judge = Judge()

    async def release(self, ref: Ref, meta: Mapping[str, Any]) -> float | None:
        """The InferenceService is being deleted: when to look again (None: done)."""
        self.pacer.forget(ref.key)
        self.judge.forget(ref.key)
        return await self.releaser.release(ref, meta)

    async def release_stale(
        self, isvc: InferenceService, meta: Mapping[str, Any], outcome: CacheOutcome
    ) -> CacheOutcome:
        """Let go of a recorded instance the spec no longer asks for (another source)."""
        record = Record.read(meta)
        if record is None or (isvc.spec.cache is not None and isvc.spec.cache.source == OWNED):
            return outcome
        ref = Ref(isvc.namespace, isvc.name, isvc.metadata.uid)
        keep = outcome.status.name if outcome.status.source == EXISTING else None
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
        source = EXISTING if cache.existing_memorystore is not None else OWNED
        digest = hashlib.sha256(cache.model_dump_json().encode()).hexdigest()  # the spec
        if (known := self.pacer.skip(ref.key, digest)) is not None:
            return known
        try:
            api = await self.connector.api()
            if cache.existing_memorystore is not None:
                result = await self._existing(api, ref, cache.existing_memorystore.name)
            else:
                result = await self._owned(api, isvc, ref, meta, old)
        except MemorystoreError as exc:
            name = old.name if old else None
            result = self.judge.failed(ref, source, exc.code, exc.message, name, exc.retryable)
        verdict = result.outcome.verdict
        previous = self.pacer.previous(ref.key)
        if result.kind == "failed" and (previous is None or previous.verdict != verdict):
            self.events.post(ref, "Warning", verdict.reason, verdict.message)
        return self.pacer.record(ref.key, digest, result)

    async def _existing(self, api: MemorystoreApi, ref: Ref, name: str) -> MemorystoreOutcome:
        if not name.startswith("projects/"):
            where = location(None, self.connector.settings, api.default_project)
            if isinstance(where, str):
                return self.judge.failed(ref, EXISTING, CONFIG_ERROR, where, name, retryable=False)
            name = existing_name(name, where)
        instance = await api.get_instance(name)
        if instance is None:
            return self.judge.failed(ref, EXISTING, NOT_FOUND, f"{name} does not exist", name)
        note = "shared; memoserve never changes it"
        return await self.judge.serving(api, ref, EXISTING, instance, "ExistingMemorystore", note)

    async def _owned(
        self,
        api: MemorystoreApi,
        isvc: InferenceService,
        ref: Ref,
        meta: Mapping[str, Any],
        old: CacheStatus | None,
    ) -> MemorystoreOutcome:
        spec = isvc.spec.cache.memorystore if isvc.spec.cache else None
        assert spec is not None
        where = location(spec, self.connector.settings, api.default_project)
        if isinstance(where, str):
            return self.judge.failed(ref, OWNED, CONFIG_ERROR, where, None, retryable=False)
        desired = desired_instance(isvc, spec, where)
        record = Record.read(meta)
        failure, pending = await self._operation(api, old)
        instance = await api.get_instance(record.name if record else desired.name)
        if instance is None and record is not None and record.name != desired.name:
            instance = await api.get_instance(desired.name)  # the recorded one is gone
        if instance is None:
            if failure is not None:
                return self.judge.failed(
                    ref, OWNED, failure.code, failure.message, desired.name, failure.retryable
                )
            return await self._create(api, ref, meta, desired, where, spec.deletion_policy.value)
        if (why := not_owned(instance, ref.uid)) is not None:
            return self.judge.failed(ref, OWNED, NOT_OWNED, why, instance.name)
        if record != (wanted := Record(instance.name, spec.deletion_policy.value)):
            await write_record(self.kube, ref, meta, wanted)  # adopted, or a new policy
        serving = await self.judge.serving(
            api, ref, OWNED, instance, "MemorystoreReady", "created by memoserve", pending
        )
        if failure is not None:  # an update or upgrade failed; the instance serves as it is
            usable = serving.outcome.endpoint
            return self.judge.failed(
                ref, OWNED, failure.code, failure.message, instance.name, failure.retryable, usable
            )
        if serving.kind != "ready":
            return serving
        return await self._converge(api, ref, desired, instance, serving.outcome)

    async def _operation(
        self, api: MemorystoreApi, old: CacheStatus | None
    ) -> tuple[MemorystoreError | None, str | None]:
        """(how the operation in status.cache failed, or the name of one still running)."""
        if old is None or not old.operation:
            return None, None
        operation = await api.get_operation(old.operation)
        if operation is None or (operation.done and operation.error_code is None):
            return None, None
        if operation.done:
            code = operation.error_code or "UNKNOWN"
            return MemorystoreError(code, f"operation failed: {operation.error_message}"), None
        return None, operation.name

    async def _create(
        self,
        api: MemorystoreApi,
        ref: Ref,
        meta: Mapping[str, Any],
        desired: Instance,
        where: Location,
        policy: str,
    ) -> MemorystoreOutcome:
        meta = await write_record(self.kube, ref, meta, Record(desired.name, policy))  # no leak
        instance_id = desired.name.rsplit("/", 1)[1]
        try:
            operation = await api.create_instance(where.parent, instance_id, desired)
        except MemorystoreError as exc:
            if exc.code in REFUSED:  # surely nothing was created: no finalizer meanwhile
                await write_record(self.kube, ref, meta, None)
            raise
        what = f"{desired.name} ({desired.tier}, {desired.memory_size_gb} GB)"
        self.events.post(ref, "Normal", "MemorystoreCreate", f"creating {what}")
        status = CacheStatus(
            source=OWNED, name=desired.name, state=State.CREATING, operation=operation
        )
        verdict = Verdict.false(CACHE, CREATING, f"creating {what}; this takes minutes")
        return MemorystoreOutcome("waiting", CacheOutcome(verdict, status, hold=True))

    async def _converge(
        self,
        api: MemorystoreApi,
        ref: Ref,
        desired: Instance,
        instance: Instance,
        ready: CacheOutcome,
    ) -> MemorystoreOutcome:
        """Apply in-place changes; report those that need a new instance."""
        changes = compare(desired, instance)
        operation = None
        if changes.update:
            target = update_target(desired, instance)
            operation = await api.update_instance(target, changes.update)
            what = f"updating {instance.name}: {changes.describe(desired, instance)}"
            self.events.post(ref, "Normal", "MemorystoreUpdate", what)
        elif changes.upgrade:
            operation = await api.upgrade_instance(instance.name, changes.upgrade)
            what = f"upgrading {instance.name} to {changes.upgrade}"
            self.events.post(ref, "Normal", "MemorystoreUpgrade", what)
        status = ready.status
        if operation is not None:
            status = status.model_copy(update={"operation": operation, "state": State.UPDATING})
        if changes.recreate:
            message = (
                f"{'; '.join(changes.recreate)}: only a new instance can have that, and memoserve "
                f"never replaces one by itself; {instance.name} keeps serving. To move, delete "
                "it (gcloud redis instances delete): the operator then creates one as specified"
            )
            verdict = Verdict.false(CACHE, RECREATE_REQUIRED, message)
            return MemorystoreOutcome("failed", CacheOutcome(verdict, status, ready.endpoint))
        if operation is not None:
            verdict = Verdict.false(CACHE, UPDATING, what)
            return MemorystoreOutcome("waiting", CacheOutcome(verdict, status, ready.endpoint))
        return MemorystoreOutcome("ready", ready)
