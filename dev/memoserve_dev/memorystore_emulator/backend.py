"""The emulated Memorystore: instances backed by real redis-server processes, and operations.

Transport-free (the gRPC and REST front ends call it with the API's own request types):

- create: validated like the API does, stored CREATING at once (so a second create of the same
  ID is ALREADY_EXISTS, and a get sees it), READY after ``faults.ready_delay`` with a
  redis-server listening on the instance's host and port;
- update (an update mask), upgrade, delete: one operation at a time per instance, done after
  ``faults.operation_delay``; a change of size, redisConfigs or AUTH restarts redis-server on
  the same port (its data is lost, as when a Basic tier instance is resized);
- operations end done with the instance (or Empty), or with an injected error.

With a state file (``--data-dir``), instances survive an emulator restart (their data does not).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from google.cloud import redis_v1
from google.longrunning.operations_pb2 import Operation  # type: ignore[import-untyped]
from google.protobuf import empty_pb2  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator import validate
from memoserve_dev.memorystore_emulator.faults import ApiError, Fault, Faults
from memoserve_dev.memorystore_emulator.later import Later
from memoserve_dev.memorystore_emulator.operations import Operations
from memoserve_dev.memorystore_emulator.slot import Slot, copy_instance, now

log = logging.getLogger(__name__)
Instance = redis_v1.Instance
State: Any = Instance.State  # proto-plus enums: members are ints to mypy


def _plain(value: Any) -> Any:
    """A map field's value as a dict (proto-plus takes dicts, not another message's map)."""
    return dict(value) if hasattr(value, "items") else value


class Backend:
    def __init__(
        self, workdir: Path, faults: Faults, host: str = "127.0.0.1", state_file: Path | None = None
    ) -> None:
        self.workdir, self.faults, self.host, self.state_file = workdir, faults, host, state_file
        self.slots: dict[str, Slot] = {}
        self.operations = Operations()
        self.later = Later()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-state")
        self.calls: Counter[str] = Counter()  # RPCs answered or refused, by method

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        self.faults.check(method)

    # -- instances -------------------------------------------------------------------------

    def _slot(self, name: str) -> Slot:
        validate.name_parts(name)
        slot = self.slots.get(name)
        if slot is None:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        return slot

    def get_instance(self, name: str) -> Instance:
        self._enter("GetInstance")
        return copy_instance(self._slot(name).instance)

    def list_instances(self, parent: str) -> list[Instance]:
        self._enter("ListInstances")
        prefix = parent if not parent.endswith("/locations/-") else parent.removesuffix("-")
        validate.parent_parts(parent.replace("/locations/-", "/locations/all"))
        return [
            copy_instance(s.instance) for n, s in sorted(self.slots.items()) if n.startswith(prefix)
        ]

    def get_auth_string(self, name: str) -> str:
        self._enter("GetInstanceAuthString")
        slot = self._slot(name)
        if not slot.instance.auth_enabled:
            raise ApiError("FAILED_PRECONDITION", f"AUTH is not enabled on {name}")
        return slot.auth_string

    def create_instance(self, parent: str, instance_id: str, instance: Instance) -> Operation:
        self._enter("CreateInstance")
        validate.check_create(parent, instance_id, instance)
        name = f"{parent}/instances/{instance_id}"
        if name in self.slots:
            raise ApiError("ALREADY_EXISTS", f"Resource '{name}' already exists")
        instance = copy_instance(instance)
        validate.apply_defaults(instance, parent, instance_id)
        for output_only in ("host", "port", "server_ca_certs", "nodes", "status_message"):
            instance._pb.ClearField(output_only)
        instance.state = State.CREATING
        instance.create_time = now()
        slot = self.slots[name] = Slot(instance, str(uuid.uuid4()))
        slot.busy = True
        operation = self.operations.begin(parent, name, "create")
        fault = self.faults.operation_fault("create")
        finish = functools.partial(self._finish_create, slot, operation, fault)
        self._later(self.faults.ready_delay, finish, slot, operation)
        return operation

    async def _finish_create(self, slot: Slot, operation: Operation, fault: Fault | None) -> None:
        name = slot.instance.name
        if fault is None:
            try:
                await slot.start(self.workdir, self.host)
            except Exception as exc:  # whatever it is, the operation says so
                fault = Fault("INTERNAL", f"redis-server did not start: {exc!r}")
        if fault is not None:  # a failed create leaves no instance behind
            self.slots.pop(name, None)
            self._end(operation, response=None, fault=fault)
            return
        slot.instance.state, slot.busy = State.READY, False
        self._end(operation, response=slot.instance)  # the created instance

    def update_instance(self, instance: Instance, paths: list[str]) -> Operation:
        self._enter("UpdateInstance")
        slot = self._ready(instance.name)
        fields = validate.update_fields(paths)
        candidate = copy_instance(slot.instance)
        for field in fields:
            setattr(candidate, field, _plain(getattr(instance, field)))
        validate.check_instance(candidate)
        operation = self._begin(slot, "update")
        fault = self.faults.operation_fault("update")
        finish = functools.partial(self._finish_update, slot, operation, candidate, fields, fault)
        self._later(self.faults.operation_delay, finish, slot, operation)
        return operation

    async def _finish_update(
        self,
        slot: Slot,
        operation: Operation,
        candidate: Instance,
        fields: list[str],
        fault: Fault | None,
    ) -> None:
        if fault is None:
            enabling = (
                "auth_enabled" in fields
                and candidate.auth_enabled
                and not slot.instance.auth_enabled
            )
            for field in fields:
                setattr(slot.instance, field, _plain(getattr(candidate, field)))
            if enabling:
                slot.auth_string = str(uuid.uuid4())
            if {"memory_size_gb", "redis_configs", "auth_enabled"} & set(fields):
                await slot.restart(self.workdir, self.host)
        self._settle(slot, operation, fault)

    def upgrade_instance(self, name: str, redis_version: str) -> Operation:
        self._enter("UpgradeInstance")
        slot = self._ready(name)
        versions = validate.VERSIONS
        current = slot.instance.redis_version
        if redis_version not in versions or (
            current in versions and versions.index(redis_version) <= versions.index(current)
        ):
            raise validate.invalid(f"cannot upgrade from {current} to {redis_version}")
        operation = self._begin(slot, "upgrade")
        fault = self.faults.operation_fault("upgrade")

        async def finish() -> None:
            if fault is None:
                slot.instance.redis_version = redis_version
            self._settle(slot, operation, fault)

        self._later(self.faults.operation_delay, finish, slot, operation)
        return operation

    def delete_instance(self, name: str) -> Operation:
        self._enter("DeleteInstance")
        slot = self._ready(name)
        operation = self._begin(slot, "delete", State.DELETING)
        fault = self.faults.operation_fault("delete")

        async def finish() -> None:
            if fault is not None:
                self._settle(slot, operation, fault)
                return
            await slot.stop()
            self.slots.pop(name, None)
            self._end(operation, response=None)

        self._later(self.faults.operation_delay, finish, slot, operation)
        return operation

    def _ready(self, name: str) -> Slot:
        slot = self._slot(name)
        if slot.busy or slot.instance.state != State.READY:
            state = slot.instance.state.name
            raise ApiError("FAILED_PRECONDITION", f"{name} is {state}: one operation at a time")
        return slot

    def _begin(self, slot: Slot, verb: str, state: Any = State.UPDATING) -> Operation:
        slot.busy, slot.instance.state = True, state
        parent = slot.instance.name.rsplit("/instances/", 1)[0]
        return self.operations.begin(parent, slot.instance.name, verb)

    def _settle(self, slot: Slot, operation: Operation, fault: Fault | None) -> None:
        slot.instance.state, slot.busy = State.READY, False
        self._end(operation, response=None if fault else slot.instance, fault=fault)

    # -- operations ------------------------------------------------------------------------

    def _end(
        self, operation: Operation, *, response: Instance | None, fault: Fault | None = None
    ) -> None:
        self.operations.end(operation, response, fault)
        self.save()

    def get_operation(self, name: str) -> Operation:
        self._enter("GetOperation")
        return self.operations.get(name)

    def delete_operation(self, name: str) -> empty_pb2.Empty:
        self._enter("DeleteOperation")
        self.operations.delete(name)
        return empty_pb2.Empty()

    def list_operations(self, name: str) -> list[Operation]:
        self._enter("ListOperations")
        return self.operations.list(name)

    def _later(
        self, delay: float, work: Callable[[], Awaitable[None]], slot: Slot, operation: Operation
    ) -> None:
        """Finish ``operation`` after ``delay``; if finishing fails, the operation says so."""

        def failed(exc: Exception) -> None:
            if not operation.done:
                self._settle(slot, operation, Fault("INTERNAL", f"emulator: {exc!r}"))

        self.later.run(delay, work, failed)

    # -- life of the emulator --------------------------------------------------------------

    def save(self) -> None:
        if self.state_file is None:
            return
        stable = [s for s in self.slots.values() if s.instance.state == State.READY]
        data = [
            {"instance": json.loads(Instance.to_json(s.instance)), "auth": s.auth_string}
            for s in stable
        ]
        # Written in order, off the event loop, by the one thread of this executor.
        self._writer.submit(self.state_file.write_text, json.dumps({"instances": data}, indent=2))

    async def load(self) -> None:
        """Bring back the instances of the state file, each on its old port when free."""
        if self.state_file is None or not self.state_file.exists():
            return
        data: dict[str, Any] = json.loads(await asyncio.to_thread(self.state_file.read_text))
        for entry in data.get("instances", []):
            instance = Instance.from_json(json.dumps(entry["instance"]), ignore_unknown_fields=True)
            slot = self.slots[instance.name] = Slot(instance, entry["auth"])
            await slot.restart(self.workdir, self.host)

    async def close(self) -> None:
        await self.later.close()
        self.save()
        await asyncio.to_thread(self._writer.shutdown, wait=True)
        for slot in self.slots.values():
            await slot.stop()
