"""Fault injection: what the emulator gets wrong on purpose, and how slow it is.

- ``fail_next(method, code)``: the next call(s) of an RPC (``CreateInstance``, ``GetInstance``,
  ``UpdateInstance``, ``DeleteInstance``, ``GetInstanceAuthString``, ...) fail at once with
  that gRPC status, e.g. PERMISSION_DENIED or RESOURCE_EXHAUSTED;
- ``fail_next_operation(verb, code)``: the next operation of a verb (create, update, upgrade,
  delete) is accepted and then ends in that error; a failed create leaves no instance behind;
- ``ready_delay`` (CREATING -> READY) and ``operation_delay`` (update, upgrade, delete): slow
  operations.

Set from the command line, over the admin endpoint (``POST /emulator/v1/faults``) or directly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2  # type: ignore[import-untyped]

VERBS = ("create", "update", "upgrade", "delete")


class ApiError(Exception):
    """An RPC's failure: a gRPC status name and a message."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Fault:
    code: str
    message: str


def _message(code: str, what: str) -> str:
    """``what``: e.g. instances.create, clusters.get."""
    return {
        "PERMISSION_DENIED": f"Permission 'redis.{what}' denied (injected fault)",
        "RESOURCE_EXHAUSTED": "Quota exceeded for quota metric 'Instances' (injected fault)",
    }.get(code, f"{code} (injected fault)")


def _check_code(code: str) -> None:
    try:
        valid = code_pb2.Code.Value(code) != code_pb2.OK
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"{code!r} is not a gRPC status code name (e.g. PERMISSION_DENIED)")


@dataclass
class Faults:
    ready_delay: float = 2.0
    operation_delay: float = 1.0
    calls: dict[str, deque[Fault]] = field(default_factory=dict)
    operations: dict[str, deque[Fault]] = field(default_factory=dict)

    def fail_next(self, method: str, code: str, message: str = "", times: int = 1) -> None:
        _check_code(code)
        collection = "clusters" if method.endswith("Cluster") else "instances"
        verb = method.removesuffix("Instance").removesuffix("Cluster").lower() or method
        fault = Fault(code, message or _message(code, f"{collection}.{verb}"))
        self.calls.setdefault(method, deque()).extend([fault] * times)

    def fail_next_operation(self, verb: str, code: str, message: str = "", times: int = 1) -> None:
        _check_code(code)
        if verb not in VERBS:
            raise ValueError(f"operation verb must be one of {', '.join(VERBS)}")
        fault = Fault(code, message or f"{verb} failed: {code} (injected fault)")
        self.operations.setdefault(verb, deque()).extend([fault] * times)

    def check(self, method: str) -> None:
        """Raise the next injected failure of ``method``, if any."""
        queue = self.calls.get(method)
        if queue:
            fault = queue.popleft()
            raise ApiError(fault.code, fault.message)

    def operation_fault(self, verb: str) -> Fault | None:
        queue = self.operations.get(verb)
        return queue.popleft() if queue else None

    def reset(self) -> None:
        self.calls.clear()
        self.operations.clear()

    def apply(self, data: dict[str, Any]) -> None:
        """From the admin endpoint's JSON: {"method": ..., "code": ..., "message": ...,
        "times": N} or {"operation": VERB, "code": ...} and/or {"readyDelay": S,
        "operationDelay": S}."""
        times = int(data.get("times", 1))
        if "method" in data:
            self.fail_next(
                str(data["method"]), str(data["code"]), str(data.get("message", "")), times
            )
        if "operation" in data:
            self.fail_next_operation(
                str(data["operation"]), str(data["code"]), str(data.get("message", "")), times
            )
        if "readyDelay" in data:
            self.ready_delay = float(data["readyDelay"])
        if "operationDelay" in data:
            self.operation_delay = float(data["operationDelay"])

    def describe(self) -> dict[str, Any]:
        return {
            "readyDelay": self.ready_delay,
            "operationDelay": self.operation_delay,
            "calls": {m: [f.code for f in q] for m, q in self.calls.items() if q},
            "operations": {v: [f.code for f in q] for v, q in self.operations.items() if q},
        }
