"""Kubernetes resource quantities (``500m``, ``2``, ``16Gi``, ``1e3``): the one parser.

The InferenceService's resource fields are checked with it, the pods' worker count is derived
from the CPU request with it, and the operator compares its children's quantities by value with
it (the API server writes ``2048Mi`` back as ``2Gi``). Exact: a ``Decimal``, never a float.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

# Kubernetes' own quantity grammar (resource.Quantity), as the core OpenAPI schemas spell it:
# what the API server checks a CRD's int-or-string quantity fields with.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
# A number, then a suffix or a decimal exponent (e3, E-2), or neither. Kubernetes parses the
# exponent as an integer, though its OpenAPI pattern allows a fraction there.
_PARTS = re.compile(
    rf"^(?P<number>{_NUMBER})(?:(?P<suffix>[KMGTPE]i|[numkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?$"
)


def parse_quantity(value: object) -> Decimal | None:
    """A quantity's value (``"1500m"`` -> 1.5, ``"2Gi"`` -> 2147483648, ``3`` -> 3); None for
    anything that is not one (a bool, a float: YAML's ``0.5`` is not a quantity, ``"0.5"`` is)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        return None
    match = _PARTS.match(value)
    if match is None:
        return None
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        return None
    if match["exponent"] is not None:
        return number.scaleb(int(match["exponent"]))
    return number * _SUFFIXES[match["suffix"] or ""]


def is_quantity(value: object) -> bool:
    return parse_quantity(value) is not None


def whole_cores(cpu: object, *, low: int, high: int) -> int:
    """A CPU quantity rounded up to whole cores, within [low, high]; ``low`` when unset or not a
    quantity."""
    value = parse_quantity(cpu)
    if value is None:
        return low
    return max(low, min(high, math.ceil(value)))
