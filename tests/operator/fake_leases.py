"""coordination.k8s.io/v1 Leases for the fake API server, as leader election relies on them.

``LeaseKube`` is ``fake_api.FakeKube`` (everything the operator needs) plus Leases kept the way
the API server keeps them: every write stores a new resourceVersion; a PUT carrying another
resourceVersion than the stored one is refused with 409 Conflict (one carrying none overwrites
unconditionally), and so is a POST of a Lease that exists. kmock records every Lease request.

Faults, per candidate (named by its ``X-Replica`` request header):
- ``cut_off(replica)``: its Lease requests hang unanswered (a network partition) until ``mend()``,
  or with ``how="refuse"`` are answered 503;
- ``hold_reads(n)``: the next GETs wait until ``n`` have come, so that ``n`` candidates write
  against the same resourceVersion (a race, made certain);
- ``after_next_read(action)``: e.g. another writer's write between a candidate's GET and PUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp.web
import kmock
from kubernetes_asyncio.client import ApiClient, Configuration

from memoserve_operator.kube.client import KubeClient
from memoserve_operator.kube.leader import Elector, Leases, Timing, identity, run_elected
from tests.operator.fake_api import FakeKube

REPLICA = "X-Replica"
LEASES = ("coordination.k8s.io", "leases")
Lease = dict[str, Any]


@dataclass
class LeaseState:
    stored: dict[tuple[str, str], Lease] = field(default_factory=dict)  # (namespace, name)
    cut: dict[str, Literal["hang", "refuse"]] = field(default_factory=dict)
    mended: asyncio.Event = field(default_factory=asyncio.Event)
    read_barrier: asyncio.Barrier | None = None
    after_read: Callable[[], object] | None = None


class LeaseKube(FakeKube):
    @property
    def lease_state(self) -> LeaseState:
        state: LeaseState = self.__dict__.setdefault("_lease_state", LeaseState())
        return state

    def lease(self, namespace: str, name: str) -> Lease | None:
        return self.lease_state.stored.get((namespace, name))

    def put_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> Lease:
        """Store a Lease as another writer would (a new resourceVersion)."""
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        return self._store(namespace, name, lease)

    def cut_off(self, replica: str, how: Literal["hang", "refuse"] = "hang") -> None:
        self.lease_state.cut[replica] = how

    def mend(self) -> None:
        """Reconnect every candidate; hung requests are answered 503."""
        self.lease_state.cut.clear()
        self.lease_state.mended.set()

    def hold_reads(self, parties: int) -> None:
        self.lease_state.read_barrier = asyncio.Barrier(parties)

    def after_next_read(self, action: Callable[[], object]) -> None:
        """Run ``action`` once the next GET has read the Lease (before it is answered)."""
        self.lease_state.after_read = action

    async def _handle(self, request: Any) -> Any:
        resource = request.resource
        if resource is None or (resource.group, resource.plural) != LEASES:
            return await super()._handle(request)
        state = self.lease_state
        how = state.cut.get(request.headers.get(REPLICA, ""))
        if how == "hang":
            await state.mended.wait()
        if how is not None:
            raise kmock.KubernetesError(503, "ServiceUnavailable", "cut off from the API server")
        namespace = str(request.namespace)
        if request.method == "GET" and request.name:
            barrier = state.read_barrier
            if barrier is not None:
                await barrier.wait()
                state.read_barrier = None if state.read_barrier is barrier else state.read_barrier
            response = self._respond(namespace, request.name, 200)
            if (action := state.after_read) is not None:
                state.after_read = None
                action()
            return response
        if request.method == "POST" and not request.name:
            name = str(request.data["metadata"]["name"])
            if (namespace, name) in state.stored:
                raise kmock.KubernetesError(409, "AlreadyExists", f"leases {name} already exists")
            self._store(namespace, name, request.data)
            return self._respond(namespace, name, 201)
        if request.method == "PUT" and request.name:
            current = self._existing(namespace, request.name)
            sent = (request.data.get("metadata") or {}).get("resourceVersion")
            if sent and sent != current["metadata"]["resourceVersion"]:  # none: unconditional
                raise kmock.KubernetesError(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes "
                    "to the latest version and try again",
                )
            data = {**request.data, "metadata": {**request.data["metadata"]}}
            data["metadata"]["uid"] = current["metadata"]["uid"]
            self._store(namespace, request.name, data)
            return self._respond(namespace, request.name, 200)
        raise kmock.KubernetesError(405, "MethodNotAllowed", f"{request.method} on leases")

    def _store(self, namespace: str, name: str, lease: Lease) -> Lease:
        meta = {
            "uid": str(uuid.uuid4()),
            "creationTimestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            **lease.get("metadata", {}),
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(next(self.versions)),
        }
        stored = {**lease, "metadata": meta}
        self.lease_state.stored[namespace, name] = stored
        return stored

    def _existing(self, namespace: str, name: str) -> Lease:
        lease = self.lease(namespace, name)
        if lease is None:
            raise kmock.KubernetesError(404, "NotFound", f'leases "{name}" not found')
        return lease

    def _respond(self, namespace: str, name: str, status: int) -> aiohttp.web.Response:
        return aiohttp.web.json_response(self._existing(namespace, name), status=status)


@dataclass
class Replica:
    """An operator replica under leader election; ``operate`` stands in for kopf and records
    when it acted. ``terminated`` is SIGTERM (kopf stops by itself); a ``stubborn`` replica's
    kopf ignores the stop flag and has to be cancelled."""

    name: str
    elector: Elector
    stubborn: bool = False
    periods: list[list[float]] = field(default_factory=list)  # [start, end] of each term
    terminated: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def acting(self) -> bool:
        return bool(self.periods) and self.periods[-1][1] == math.inf

    async def operate(self, stop_flag: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        period = [loop.time(), math.inf]
        self.periods.append(period)
        flags = [self.terminated] if self.stubborn else [self.terminated, stop_flag]
        waits = [asyncio.create_task(flag.wait()) for flag in flags]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            period[1] = loop.time()
            for wait in waits:
                wait.cancel()


def never_two_at_once(*replicas: Replica) -> None:
    terms = sorted(period for replica in replicas for period in replica.periods)
    for (_, end), (start, _) in itertools.pairwise(terms):
        assert end <= start, terms


@contextlib.asynccontextmanager
async def lease_client(api: LeaseKube, replica: str) -> AsyncIterator[KubeClient]:
    """The operator's client, one for each replica, naming it in a header (for ``cut_off``)."""
    configuration = Configuration(host=str(api.url).rstrip("/"))
    async with ApiClient(configuration) as client:
        client.set_default_header(REPLICA, replica)
        yield KubeClient(client)


@contextlib.asynccontextmanager
async def replicas(
    api: LeaseKube, namespace: str, name: str, timing: Timing | None = None
) -> AsyncIterator[Callable[..., Awaitable[Replica]]]:
    """``start(name, stubborn=False, liveness_url=None)`` runs one more replica."""
    started: list[Replica] = []
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            replica: str, *, stubborn: bool = False, liveness_url: str | None = None
        ) -> Replica:
            client = await stack.enter_async_context(lease_client(api, replica))
            leases = Leases(client, namespace, name)
            elector = Elector(leases, identity({"POD_NAME": replica}), timing)
            one = Replica(replica, elector, stubborn)
            one.task = asyncio.create_task(run_elected(elector, one.operate, liveness_url))
            started.append(one)
            return one

        try:
            yield start
        finally:
            api.mend()
            tasks = [one.task for one in started if one.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
