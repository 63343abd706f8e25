"""One loop that looks at every InferenceService when it is due, instead of a kopf timer each.

kopf's ``@kopf.timer`` runs one task per object, woken every few seconds to ask
``Reconciler.due``: at 1000 services that is 200 wake-ups a second, nearly all answering "not
yet" (docs/performance.md, "The operator at scale"). Here the latest body of each
InferenceService comes from the watch (an ``on.event`` handler calls :meth:`Resync.observe`),
and one task looks at all of them every ``tick`` seconds. A service is checked

- when ``Reconciler.due`` says so: every ``recheck_seconds`` while not Ready, every
  ``resync_seconds`` once settled; never within a tick of being first seen (its create or
  resume handler is reconciling it);
- when a check asked to come back at a given time: a reconcile's ``retry_after`` (a Memorystore
  instance being created), or an API error (sooner for a transient one), as a kopf timer would
  have been retried after its ``kopf.TemporaryError``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from memoserve_operator.kube.client import KubeError
from memoserve_operator.reconcile import ReconcileOutcome

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
CONCURRENCY = 16  # checks at once: as many as the operator's connections to the API server
TRANSIENT_RETRY_SECONDS = 10.0  # the API server did not answer
REFUSED_RETRY_SECONDS = 60.0  # it refused a read or a write (or a check failed unexpectedly)

Key = tuple[str, str]  # (namespace, name)


def retry_delay(exc: KubeError) -> float:
    """How long to wait before trying again after ``exc`` (sooner when waiting helps)."""
    return TRANSIENT_RETRY_SECONDS if exc.transient else REFUSED_RETRY_SECONDS


class Checks(Protocol):
    """What the loop needs of ``reconcile.Reconciler``."""

    def due(self, namespace: str, name: str, body: dict[str, Any]) -> bool: ...

    async def reconcile(self, namespace: str, name: str, *, trigger: str) -> ReconcileOutcome: ...


class Resync:
    """The periodic checks of every InferenceService, from the bodies the watch delivered."""

    def __init__(
        self,
        reconciler: Checks,
        *,
        tick: float = TICK_SECONDS,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.reconciler = reconciler
        self.tick = tick
        self._limit = asyncio.Semaphore(concurrency)
        self._bodies: dict[Key, dict[str, Any]] = {}
        # Key -> (not before this loop time, then check it whatever ``due`` says).
        self._wait: dict[Key, tuple[float, bool]] = {}

    def observe(self, event_type: str | None, body: Any) -> None:
        """A watch event for an InferenceService (``None``: kopf's initial listing)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if event_type == "DELETED":
            self._bodies.pop(key, None)
            self._wait.pop(key, None)
            return
        if key not in self._bodies:  # its create or resume handler reconciles it now
            self._wait[key] = (asyncio.get_running_loop().time() + self.tick, False)
        self._bodies[key] = dict(body)

    async def run(self) -> None:
        """Check what is due every tick, until cancelled."""
        while True:
            await asyncio.sleep(self.tick)
            await self.sweep()

    async def sweep(self) -> None:
        """Check every service that is due now, at most ``concurrency`` at once."""
        now = asyncio.get_running_loop().time()
        due = [key for key, body in self._bodies.items() if self._due(key, body, now)]
        if due:
            await asyncio.gather(*(self._check(key) for key in due))

    def _due(self, key: Key, body: dict[str, Any], now: float) -> bool:
        wait = self._wait.get(key)
        if wait is not None:
            until, forced = wait
            if now < until:
                return False
            del self._wait[key]
            if forced:
                return True
        return self.reconciler.due(*key, body)

    async def _check(self, key: Key) -> None:
        async with self._limit:
            try:
                outcome = await self.reconciler.reconcile(*key, trigger="resync")
            except KubeError as exc:
                delay = retry_delay(exc)
                log.warning("resync of %s/%s failed, again in %.0f s: %s", *key, delay, exc)
                self._come_back(key, delay)
                return
            except Exception:  # a bug of ours: say so, keep the loop (and the others) going
                log.exception("resync of %s/%s failed unexpectedly", *key)
                self._come_back(key, REFUSED_RETRY_SECONDS)
                return
        if outcome.retry_after is not None:
            self._come_back(key, outcome.retry_after)

    def _come_back(self, key: Key, delay: float) -> None:
        if key in self._bodies:  # not deleted meanwhile
            self._wait[key] = (asyncio.get_running_loop().time() + delay, True)
