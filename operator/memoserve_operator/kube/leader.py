"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
(kopf's peering pauses every operator of equal priority rather than electing one).

A candidate may take the Lease when nobody holds it, or when its record has not changed for
leaseDurationSeconds by the candidate's own clock (renewTime is informational: node clocks never
meet). Every write is a PUT with the resourceVersion just read: of two racing candidates one gets
409 (``Conflict``) and stands by. The leader renews every ``renew_every`` (retrying every
``retry_every``) and stops acting when no renewal succeeded for ``renew_deadline`` < the lease
duration, i.e. before a standby may take over. On SIGTERM it releases the Lease, so a standby
takes over at its next try. The Lease's calls go through the operator's ``KubeClient``: one
mapping of API errors, one user agent, one timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from memoserve_operator.kube.client import Conflict, KubeClient, KubeError, resource_of
from memoserve_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)
Object = dict[str, Any]
Operate = Callable[[asyncio.Event], Coroutine[Any, Any, None]]  # runs kopf until the flag is set
DEFAULT_NAMESPACE = "memoserve-system"
LEASE = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
LEASES = resource_of(LEASE["apiVersion"], LEASE["kind"])


@dataclass(frozen=True)
class Timing:
    """In seconds; client-go calls them LeaseDuration, RenewDeadline and RetryPeriod."""

    duration: int = 15  # leaseDurationSeconds
    renew_deadline: float = 10.0  # the leader stops when no renewal succeeded for this long
    renew_every: float = 5.0
    retry_every: float = 2.0
    stop_grace: float = 2.5  # kopf's time to stop before it is cancelled

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> Timing:
        """Renew every third of the duration, give up after two thirds: the leader has stopped
        (grace included) a sixth of the duration before a standby may take over."""
        duration = settings.lease_duration_seconds
        return cls(
            duration, duration * 2 / 3, duration / 3, settings.lease_retry_seconds, duration / 6
        )


class LeadershipLost(Exception):
    """The leader could not renew its Lease in time, and stopped acting."""


class Leases:
    """The one Lease this election runs on, through the operator's ``KubeClient`` (so a 409 is
    ``Conflict`` and no answer is ``Unavailable``, as for every other call)."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name

    async def get(self) -> Object | None:
        """The Lease, or None when there is none."""
        return await self.kube.get(LEASES, self.namespace, self.name)

    async def create(self, spec: Object) -> Object:
        """Conflict if another candidate created it first."""
        meta = {"name": self.name, "namespace": self.namespace}
        return await self.kube.create({**LEASE, "metadata": meta, "spec": spec})

    async def replace(self, lease: Object, spec: Object) -> Object:
        """PUT with the resourceVersion of ``lease``: Conflict if anyone has written it since."""
        return await self.kube.replace(lease | {"spec": spec})


class Elector:
    """One candidate: ``acquire`` until leading, ``hold`` until a renewal fails, ``release``."""

    def __init__(self, leases: Leases, identity: str, timing: Timing | None = None) -> None:
        self.leases, self.identity, self.timing = leases, identity, timing or Timing()
        self.leading, self.holder = False, ""  # the holder as last read
        self._seen: Object | None = None  # the Lease's spec as last read, and since when
        self._seen_at = self._renewed = 0.0

    async def try_once(self) -> bool:
        """One acquire-or-renew: whether this candidate holds the Lease afterwards."""
        now, started = _micro_time(), asyncio.get_running_loop().time()
        try:
            lease = await self.leases.get()
            if lease is None:
                spec = self._spec(now, now, 0)
                await self.leases.create(spec)
            else:
                old = lease.get("spec") or {}
                self._observe(old, started)
                mine, expiry = self.holder == self.identity, old.get("leaseDurationSeconds") or 0
                if self.holder and not mine and started < self._seen_at + expiry:
                    return False
                transitions = int(old.get("leaseTransitions") or 0) + (not mine)
                spec = self._spec(old.get("acquireTime", now) if mine else now, now, transitions)
                await self.leases.replace(lease, spec)
        except KubeError as exc:
            log = logger.info if isinstance(exc, Conflict) else logger.warning  # a lost race
            log("leader election: %s", exc)
            return False
        self._observe(spec, started)
        self._renewed = started
        return True

    async def acquire(self) -> None:
        """Try every ``retry_every`` (with jitter, so candidates do not move in step)."""
        while True:
            if await self.try_once():
                break
            await asyncio.sleep(self.timing.retry_every * random.uniform(1.0, 1.2))
        self.leading = True
        logger.info("leader election: %s leads (lease %s)", self.identity, self.leases.name)

    async def hold(self) -> None:
        """Renew until a renewal cannot be made before the deadline, or another holds the Lease;
        then return: leadership is lost."""
        try:
            while True:
                await asyncio.sleep(self.timing.renew_every)
                async with asyncio.timeout_at(self._renewed + self.timing.renew_deadline):
                    while not await self.try_once():
                        if self.holder not in ("", self.identity):
                            logger.error("leader election: the lease is held by %s", self.holder)
                            self.leading = False
                            return
                        await asyncio.sleep(self.timing.retry_every)
        except TimeoutError:
            logger.error("leader election: no renewal in %ss", self.timing.renew_deadline)
            self.leading = False

    async def release(self) -> None:
        """Step down: no holder and a 1 s duration, so that a standby takes over at once."""
        if not self.leading:
            return
        self.leading = False
        try:
            async with asyncio.timeout(self.timing.renew_deadline):
                lease = await self.leases.get()
                spec = (lease or {}).get("spec") or {}
                if lease is not None and spec.get("holderIdentity") == self.identity:
                    now = _micro_time()
                    released = {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now}
                    await self.leases.replace(lease, spec | released)
                    logger.info("leader election: %s released the lease", self.identity)
        except (KubeError, TimeoutError) as exc:
            logger.warning("leader election: could not release the lease: %r", exc)

    def _observe(self, spec: Object, now: float) -> None:
        if spec != self._seen:
            self._seen, self._seen_at = spec, now
        self.holder = spec.get("holderIdentity") or ""

    def _spec(self, acquired: str, renewed: str, transitions: int) -> Object:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.timing.duration,
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }


async def run_elected(elector: Elector, operate: Operate, liveness_url: str | None) -> None:
    """Stand by (answering liveness) until elected, then run ``operate`` while leading.

    SIGTERM while standing by: return. ``operate`` ends (kopf stopped on SIGTERM): release the
    Lease, then return or re-raise. Leadership lost: set ``operate``'s stop flag, cancel it if it
    has not stopped within ``stop_grace``, and raise LeadershipLost.
    """
    stop_flag, tasks = asyncio.Event(), set[asyncio.Task[Any]]()

    def spawn(coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        tasks.add(task := asyncio.create_task(coroutine, name=name))
        return task

    _on_signals(stop_flag.set)  # kopf installs its own once it runs
    try:
        async with standby_liveness(liveness_url):
            acquiring = spawn(elector.acquire(), "lease acquisition")
            stopping = spawn(stop_flag.wait(), "standby")
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop_flag.is_set():
            await elector.release()  # if elected meanwhile
            return
        acquiring.result()
        # Created before kopf starts: kopf's shutdown cancels only the tasks it saw start.
        holding = spawn(elector.hold(), "lease renewal")
        operating = spawn(operate(stop_flag), "operator")
        await asyncio.wait({holding, operating}, return_when=asyncio.FIRST_COMPLETED)
        if not operating.done():
            stop_flag.set()
            await asyncio.wait({operating}, timeout=elector.timing.stop_grace)
            lost = f"{elector.identity} lost lease {elector.leases.name}"
            raise LeadershipLost(lost) from holding.exception()
        holding.cancel()
        await asyncio.wait({holding})
        await elector.release()
        operating.result()
    finally:
        _on_signals(None)
        for task in tasks:
            task.cancel()  # e.g. kopf, when it did not stop within the grace period
        if tasks:
            await asyncio.wait(tasks, timeout=elector.timing.stop_grace)
        elector.leading = False  # cancelled (torn down): no release, a standby waits it out


def _on_signals(handler: Callable[[], None] | None) -> None:
    """Handle SIGINT and SIGTERM (None: no longer), where the loop can (the main thread)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            if handler is None:
                loop.remove_signal_handler(signum)
            else:
                loop.add_signal_handler(signum, handler)


async def run_with_election(
    settings: OperatorSettings, environ: Mapping[str, str], operate: Operate
) -> None:
    """``run_elected`` with the Lease and identity of these settings and this pod."""
    kube = await KubeClient.open()
    try:
        leases = Leases(kube, lease_namespace(settings, environ), settings.lease_name)
        elector = Elector(leases, identity(environ), Timing.from_settings(settings))
        await run_elected(elector, operate, settings.liveness_url)
    finally:
        await kube.close()


@contextlib.asynccontextmanager
async def standby_liveness(url: str | None) -> AsyncIterator[None]:
    """Answer kopf's liveness URL while standing by (kopf serves it once leading)."""
    if not url:
        yield
        return
    parts = urlsplit(url)
    app = web.Application()
    app.router.add_get(parts.path or "/", _standing_by)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, parts.hostname, parts.port or 80, reuse_address=True).start()
        yield
    finally:
        await runner.cleanup()


async def _standing_by(_: web.Request) -> web.Response:
    return web.json_response({"leader": False})


def identity(environ: Mapping[str, str]) -> str:
    """The pod's name (POD_NAME, downward API) and a random suffix: a restarted container is a
    new candidate, never mistaken for the leader it once was."""
    return f"{environ.get('POD_NAME') or socket.gethostname()}_{secrets.token_hex(4)}"


def lease_namespace(settings: OperatorSettings, environ: Mapping[str, str]) -> str:
    return settings.lease_namespace or environ.get("POD_NAMESPACE") or DEFAULT_NAMESPACE


def _micro_time() -> str:
    """Now as a Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
