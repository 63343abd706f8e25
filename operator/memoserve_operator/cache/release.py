"""Letting go of an operator-created instance (the one ``record`` names), of any engine.

When the InferenceService is deleted, or its spec no longer asks for an operator-created
instance (another cache source, the cache off), the recorded instance is

- deletionPolicy Retain: left as it is, with an Event saying so;
- deletionPolicy Delete: deleted, and waited for (the caller comes back after the returned
  delay; the finalizer holds the InferenceService meanwhile);
- relabelled by someone so that it no longer names this InferenceService: left alone.

Then the record (finalizer and annotation) goes. Nothing here waits: each call looks once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memoserve_operator.cache.engine import Engine, by_key, gcloud_delete
from memoserve_operator.cache.gcp import MemorystoreError
from memoserve_operator.cache.record import EventSink, Record, Ref, write_record
from memoserve_operator.cache.verdicts import DELETING_STATE
from memoserve_operator.kube.client import KubeClient
from memoserve_operator.settings import OperatorSettings


class Releaser:
    def __init__(
        self,
        engines: Mapping[str, Engine],
        settings: OperatorSettings,
        kube: KubeClient,
        events: EventSink,
    ) -> None:
        self.engines, self.settings, self.kube, self.events = engines, settings, kube, events
        self._attempts: dict[str, int] = {}
        self._errors: dict[str, str] = {}

    def _delay(self, key: str) -> float:
        settings = self.settings
        attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
        first, most = settings.memorystore_poll_seconds, settings.memorystore_max_backoff_seconds
        return min(first * 2.0 ** (attempts - 1), most)

    async def release(
        self, ref: Ref, meta: Mapping[str, Any], keep: str | None = None
    ) -> float | None:
        """Look once; None when the record is gone, else when to look again. ``keep``: the
        name of an instance still in use (as existingMemorystore): forgotten, never deleted."""
        record = Record.read(meta)
        if record is None:
            return None
        try:
            done = await self._release(ref, meta, record, keep)
        except MemorystoreError as exc:
            if self._errors.get(ref.key) != str(exc):
                self._errors[ref.key] = str(exc)
                self.events.post(ref, "Warning", exc.code, f"deleting {record.name}: {exc.message}")
            return self._delay(ref.key)
        if done:
            self._attempts.pop(ref.key, None)
            self._errors.pop(ref.key, None)
            return None
        return self._delay(ref.key)

    async def _release(
        self, ref: Ref, meta: Mapping[str, Any], record: Record, keep: str | None
    ) -> bool:
        engine = by_key(self.engines, record.engine)
        if record.name == keep:
            message = (
                f"{record.name} is now used as {engine.existing}: memoserve no longer manages it"
            )
            return await self._forget(ref, meta, "Normal", "MemorystoreReleased", message)
        if record.deletion_policy == "Retain":
            message = (
                f"{record.name} is left in place (deletionPolicy Retain) and no longer managed by "
                f"memoserve; delete it with: {gcloud_delete(engine.gcloud, record.name)}"
            )
            return await self._forget(ref, meta, "Normal", "MemorystoreRetained", message)
        api = await engine.api()
        instance = await api.get_instance(record.name)
        if instance is None:
            return await self._forget(
                ref, meta, "Normal", "MemorystoreDeleted", f"{record.name} is deleted"
            )
        if (why := engine.not_owned(instance, ref.uid, recorded=True)) is not None:
            return await self._forget(ref, meta, "Warning", "MemorystoreNotDeleted", why)
        if instance.state != DELETING_STATE:
            await api.delete_instance(record.name)
            self.events.post(
                ref,
                "Normal",
                "MemorystoreDelete",
                f"deleting {record.name} (deletionPolicy Delete)",
            )
        return False

    async def _forget(
        self, ref: Ref, meta: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> bool:
        await write_record(self.kube, ref, meta, None)
        self.events.post(ref, type_, reason, message)
        return True
