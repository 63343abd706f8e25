"""The emulator's long-running operations (google.longrunning.Operation), as Memorystore's:
metadata is a google.cloud.redis.v1.OperationMetadata, the response the instance (or Empty
after a delete), an error a google.rpc.Status."""

from __future__ import annotations

import time
import uuid

from google.cloud import redis_v1
from google.longrunning.operations_pb2 import Operation  # type: ignore[import-untyped]
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator.faults import ApiError, Fault
from memoserve_dev.memorystore_emulator.slot import copy_instance, now

Metadata = redis_v1.OperationMetadata


class Operations:
    def __init__(self) -> None:
        self.known: dict[str, Operation] = {}

    def begin(self, parent: str, target: str, verb: str) -> Operation:
        name = f"{parent}/operations/operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
        metadata = Metadata(create_time=now(), target=target, verb=verb, api_version="v1")
        operation = Operation(name=name, done=False)
        operation.metadata.Pack(Metadata.pb(metadata))
        self.known[name] = operation
        return operation

    def end(
        self, operation: Operation, response: redis_v1.Instance | None, fault: Fault | None
    ) -> None:
        """Done: with ``fault`` as its error, else with ``response`` (None: Empty)."""
        metadata = Metadata()
        operation.metadata.Unpack(Metadata.pb(metadata))
        metadata.end_time = now()
        operation.metadata.Pack(Metadata.pb(metadata))
        operation.done = True
        if fault is not None:
            code = code_pb2.Code.Value(fault.code)  # checked when the fault was set
            operation.error.CopyFrom(status_pb2.Status(code=code, message=fault.message))
        elif response is not None:
            operation.response.Pack(redis_v1.Instance.pb(copy_instance(response)))
        else:
            operation.response.Pack(empty_pb2.Empty())

    def get(self, name: str) -> Operation:
        operation = self.known.get(name)
        if operation is None:
            raise ApiError("NOT_FOUND", f"Operation '{name}' was not found")
        copy: Operation = Operation()
        copy.CopyFrom(operation)
        return copy

    def list(self, name: str) -> list[Operation]:
        """The operations of a location (``projects/P/locations/L``)."""
        return [op for key, op in sorted(self.known.items()) if key.startswith(f"{name}/")]
