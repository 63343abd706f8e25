"""Evaluate a CRD schema's CEL rules (``x-kubernetes-validations``) in Python, with cel-python.

The API server runs these rules on ``kubectl apply``; evaluating the very same rules from the
generated CRD lets ``memoserve render`` (and the tests) refuse what the API server would refuse,
with the same messages. Like the API server, a rule sees its object after defaulting and runs
only where that object is present.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError


@dataclass(frozen=True)
class Violation:
    path: str  # where the API server would report it, e.g. spec.maxReplicas
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def violations(schema: Mapping[str, Any], value: Any, path: str = "") -> list[Violation]:
    """Every rule in ``schema`` (recursively) that ``value`` breaks, outermost first."""
    found = [
        Violation(_join(path, rule.get("fieldPath", "")), rule["message"], rule["rule"])
        for rule in schema.get("x-kubernetes-validations", [])
        if not holds(rule["rule"], value)
    ]
    if isinstance(value, Mapping):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                found += violations(sub, value[key], _join(path, key))
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, item in value.items():
                found += violations(extra, item, f"{path}[{key}]")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            found += violations(schema["items"], item, f"{path}[{index}]")
    return found


def holds(rule: str, value: Any) -> bool:
    """Whether ``rule`` is true for ``self = value``; an evaluation error counts as false, as a
    runtime error in the API server refuses the object."""
    try:
        result = _program(rule).evaluate({"self": json_to_cel(value)})
    except CELEvalError:
        return False
    return isinstance(result, celtypes.BoolType) and bool(result)


@functools.cache
def _program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _join(path: str, field: str) -> str:
    field = field.lstrip(".")
    if not field:
        return path
    return f"{path}.{field}" if path else field
