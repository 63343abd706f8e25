"""The emulated Memorystore for Valkey instances and Memorystore for Redis Cluster clusters: one
transport-free backend for both, told the API's differences by a :class:`Flavor`
(:mod:`.valkey_api`, :mod:`.cluster_api`).

- create: validated, stored CREATING at once (a second create of the ID is ALREADY_EXISTS),
  ACTIVE after ``faults.ready_delay`` with real nodes (:mod:`.nodes`) and a discovery endpoint;
  without a service connection policy for the network (:mod:`.psc`) the operation fails;
- update: one operation at a time (UPDATING), shard_count / replica_count scaled in place with
  the keys kept, configs set with CONFIG SET;
- delete: refused while deletion protection is on; the nodes stop, their files go.

Not kept across an emulator restart (``--data-dir`` keeps only Memorystore for Redis instances).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from google.longrunning.operations_pb2 import Operation  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator import validate
from memoserve_dev.memorystore_emulator.faults import ApiError, Fault, Faults
from memoserve_dev.memorystore_emulator.flavor import Flavor, Managed
from memoserve_dev.memorystore_emulator.later import Later
from memoserve_dev.memorystore_emulator.nodes import make_nodes
from memoserve_dev.memorystore_emulator.operations import Operations
from memoserve_dev.memorystore_emulator.psc import ServiceConnectionPolicies
from memoserve_dev.memorystore_emulator.slot import now
from memoserve_dev.tls import make_tls

log = logging.getLogger(__name__)


class ManagedBackend:
    def __init__(
        self,
        flavor: Flavor,
        workdir: Path,
        faults: Faults,
        operations: Operations,
        policies: ServiceConnectionPolicies,
        host: str = "127.0.0.1",
        calls: Counter[str] | None = None,
    ) -> None:
        self.flavor, self.workdir, self.faults = flavor, workdir, faults
        self.operations, self.policies, self.host = operations, policies, host
        self.calls: Counter[str] = Counter() if calls is None else calls
        self.records: dict[str, Managed] = {}
        self.later = Later()
        self._name = re.compile(rf"^projects/[^/]+/locations/[a-z0-9-]+/{flavor.collection}/[^/]+$")
        self.State: Any = flavor.message.State

    def _enter(self, verb: str) -> None:
        """Count the RPC and raise its injected fault, if any (``verb``: Create, Get, ...)."""
        method = self.flavor.ca_method if verb == "CA" else f"{verb}{self.flavor.kind}"
        self.calls[method] += 1
        self.faults.check(method)

    def _copy(self, resource: Any) -> Any:
        message = self.flavor.message
        return message.deserialize(message.serialize(resource))

    def _record(self, name: str) -> Managed:
        record = self.records.get(name) if self._name.match(name) else None
        if record is None:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        return record

    def get(self, name: str) -> Any:
        self._enter("Get")
        return self._copy(self._record(name).resource)

    def list_all(self, parent: str) -> list[Any]:
        self._enter("List")
        validate.parent_parts(parent.replace("/locations/-", "/locations/all"))
        prefix = parent.removesuffix("-") if parent.endswith("/locations/-") else f"{parent}/"
        found = sorted((n, r) for n, r in self.records.items() if n.startswith(prefix))
        return [self._copy(record.resource) for _, record in found]

    def certificate_authority(self, name: str) -> Any:
        self._enter("CA")
        record = self._record(name.removesuffix("/certificateAuthority"))
        authority = self.flavor.types.CertificateAuthority(name=name)
        if record.tls is not None:  # the per-instance CA that signed the nodes' certificates
            managed = self.flavor.types.CertificateAuthority.ManagedCertificateAuthority
            chain = managed.CertChain(certificates=[record.tls.ca_pem])
            authority.managed_server_ca = managed(ca_certs=[chain])
        return authority

    # -- create ----------------------------------------------------------------------------

    def create(self, parent: str, resource_id: str, resource: Any) -> Operation:
        self._enter("Create")
        project, region = validate.parent_parts(parent)
        self.flavor.check(resource, resource_id)
        name = f"{parent}/{self.flavor.collection}/{resource_id}"
        if name in self.records:
            raise ApiError("ALREADY_EXISTS", f"Resource '{name}' already exists")
        resource = self._copy(resource)
        resource.name, resource.uid = name, str(uuid.uuid4())
        self.flavor.defaults(resource, project, region)
        resource.state, resource.create_time = self.State.CREATING, now()
        workdir = self.workdir / f"{resource_id}-{resource.uid[:8]}"
        record = self.records[name] = Managed(resource, workdir, busy=True)
        operation = self.operations.begin(parent, name, "create", self.flavor.metadata)
        networks = self.flavor.networks(resource)
        fault = self.faults.operation_fault("create") or self.policies.check(
            name, project, networks, self.flavor.service_class, region
        )
        finish = functools.partial(self._finish_create, record, operation, fault)
        self._later(self.faults.ready_delay, finish)
        return operation

    async def _finish_create(
        self, record: Managed, operation: Operation, fault: Fault | None
    ) -> None:
        resource = record.resource
        if fault is None:
            try:
                await self._start(record)
            except Exception as exc:  # whatever it is, the operation says so
                log.exception("%s did not start", resource.name)
                fault = Fault("INTERNAL", f"nodes did not start: {exc!r}")
        if fault is not None:  # a failed create leaves nothing behind
            self.records.pop(resource.name, None)
            await self._remove(record)
            self.operations.end(operation, None, fault)
            return
        self._settle(record, operation, None)

    async def _start(self, record: Managed) -> None:
        resource = record.resource
        if self.flavor.tls(resource):
            label = resource.name.rsplit("/", 1)[1]
            record.tls = await asyncio.to_thread(make_tls, record.workdir / "tls", self.host, label)
        spec = self.flavor.spec(resource)
        nodes = make_nodes(record.workdir / "nodes", self.host, spec, record.tls)
        await asyncio.to_thread(nodes.start)
        record.nodes = nodes

    # -- update and delete -----------------------------------------------------------------

    def update(self, resource: Any, paths: list[str]) -> Operation:
        self._enter("Update")
        record = self._ready(resource.name)
        candidate = self._copy(record.resource)
        fields = self.flavor.update_fields(paths, record.resource, resource)
        for field in fields:
            value = getattr(resource, field)
            setattr(candidate, field, dict(value) if hasattr(value, "items") else value)
        self.flavor.check(candidate, None)
        operation = self._begin(record, "update", self.State.UPDATING)
        if {"shard_count", "replica_count"} & set(fields):  # what the update is heading for
            info = self.flavor.message.StateInfo
            record.resource.state_info = info(
                update_info=info.UpdateInfo(
                    target_shard_count=candidate.shard_count,
                    target_replica_count=candidate.replica_count,
                )
            )
        fault = self.faults.operation_fault("update")

        async def finish() -> None:
            if fault is None:
                await self._apply(record, candidate)
            self._settle(record, operation, fault)

        self._later(self.faults.operation_delay, finish, record, operation)
        return operation

    async def _apply(self, record: Managed, candidate: Any) -> None:
        """Make the nodes what ``candidate`` says, then show it."""
        old, new = self.flavor.spec(record.resource), self.flavor.spec(candidate)
        assert record.nodes is not None  # ACTIVE
        if (old.shards, old.replicas) != (new.shards, new.replicas):
            await asyncio.to_thread(record.nodes.scale, new.shards, new.replicas)
        changed = {k: v for k, v in new.configs.items() if old.configs.get(k) != v}
        if changed:
            await asyncio.to_thread(record.nodes.configure, changed)
        record.resource = candidate

    def delete(self, name: str) -> Operation:
        self._enter("Delete")
        record = self._ready(name)
        if record.resource.deletion_protection_enabled:
            raise ApiError(
                "FAILED_PRECONDITION",
                f"{name} has deletion protection enabled: "
                "update deletion_protection_enabled to false first",
            )
        operation = self._begin(record, "delete", self.State.DELETING)
        fault = self.faults.operation_fault("delete")

        async def finish() -> None:
            if fault is not None:
                self._settle(record, operation, fault)
                return
            self.records.pop(name, None)
            await self._remove(record)
            self.operations.end(operation, None, None)

        self._later(self.faults.operation_delay, finish, record, operation)
        return operation

    async def _remove(self, record: Managed) -> None:
        if record.nodes is not None:
            await asyncio.to_thread(record.nodes.stop)
            record.nodes = None
        await asyncio.to_thread(shutil.rmtree, record.workdir, ignore_errors=True)

    # -- operations ------------------------------------------------------------------------

    def _ready(self, name: str) -> Managed:
        record = self._record(name)
        if record.busy or record.resource.state != self.State.ACTIVE:
            state = self.State(record.resource.state).name
            raise ApiError("FAILED_PRECONDITION", f"{name} is {state}: one operation at a time")
        return record

    def _begin(self, record: Managed, verb: str, state: Any) -> Operation:
        record.busy, record.resource.state = True, state
        name = record.resource.name
        parent = name.rsplit(f"/{self.flavor.collection}/", 1)[0]
        return self.operations.begin(parent, name, verb, self.flavor.metadata)

    def _settle(self, record: Managed, operation: Operation, fault: Fault | None) -> None:
        """ACTIVE again; the operation done with the resource, or with ``fault``."""
        resource = record.resource
        resource.state, record.busy = self.State.ACTIVE, False
        resource._pb.ClearField("state_info")
        if record.nodes is not None:
            self.flavor.show(resource, *record.nodes.endpoint)
        self.operations.end(operation, None if fault else self._copy(resource), fault)

    def _later(
        self,
        delay: float,
        work: Callable[[], Awaitable[None]],
        record: Managed | None = None,
        operation: Operation | None = None,
    ) -> None:
        """Run ``work`` after ``delay``; if it fails, ``operation`` says so."""

        def failed(exc: Exception) -> None:
            if record is not None and operation is not None and not operation.done:
                self._settle(record, operation, Fault("INTERNAL", f"emulator: {exc!r}"))

        self.later.run(delay, work, failed)

    async def close(self) -> None:
        await self.later.close()
        for record in list(self.records.values()):
            await self._remove(record)
        self.records.clear()
