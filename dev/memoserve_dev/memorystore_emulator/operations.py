"""The emulator's long-running operations (google.longrunning.Operation), as Memorystore's:
metadata is the API's own OperationMetadata (redis v1, memorystore v1 or redis cluster v1), the
response the instance or cluster (or Empty after a delete), an error a google.rpc.Status.

One store for the three APIs: their clients all poll google.longrunning.Operations/GetOperation
on the same channel, with names that only say the location."""

from __future__ import annotations

import time
import uuid
from typing import Any

from google.cloud import redis_v1
from google.longrunning.operations_pb2 import Operation  # type: ignore[import-untyped]
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator.faults import ApiError, Fault
from memoserve_dev.memorystore_emulator.slot import now


class Operations:
    def __init__(self) -> None:
        self.known: dict[str, Operation] = {}
        self._metadata: dict[str, Any] = {}  # by name: the proto-plus OperationMetadata

    def begin(
        self, parent: str, target: str, verb: str, metadata_type: Any = redis_v1.OperationMetadata
    ) -> Operation:
        name = f"{parent}/operations/operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
        metadata = metadata_type(create_time=now(), target=target, verb=verb, api_version="v1")
        operation = Operation(name=name, done=False)
        operation.metadata.Pack(metadata_type.pb(metadata))
        self.known[name], self._metadata[name] = operation, metadata
        return operation

    def end(self, operation: Operation, response: Any, fault: Fault | None) -> None:
        """Done: with ``fault`` as its error, else with ``response`` (a proto-plus message;
        None: Empty)."""
        metadata = self._metadata[operation.name]
        metadata.end_time = now()
        operation.metadata.Pack(type(metadata).pb(metadata))
        operation.done = True
        if fault is not None:
            code = code_pb2.Code.Value(fault.code)  # checked when the fault was set
            operation.error.CopyFrom(status_pb2.Status(code=code, message=fault.message))
        elif response is not None:
            operation.response.Pack(type(response).pb(response))  # Pack copies (serializes)
        else:
            operation.response.Pack(empty_pb2.Empty())

    def get(self, name: str) -> Operation:
        operation = self.known.get(name)
        if operation is None:
            raise ApiError("NOT_FOUND", f"Operation '{name}' was not found")
        copy: Operation = Operation()
        copy.CopyFrom(operation)
        return copy

    def delete(self, name: str) -> None:
        self.get(name)  # NOT_FOUND as Google says it
        del self.known[name]

    def list(self, name: str) -> list[Operation]:
        """The operations of a location (``projects/P/locations/L``)."""
        return [op for key, op in sorted(self.known.items()) if key.startswith(f"{name}/")]
