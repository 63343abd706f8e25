"""The one Kubernetes quantity parser: what the resource fields accept, what the children compare
by value, and the cores a CPU request gives."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from memoserve_contract.quantity import (
    QUANTITY_PATTERN,
    is_quantity,
    parse_quantity,
    whole_cores,
)

VALUES: list[tuple[Any, Decimal | None]] = [
    # plain numbers
    (3, Decimal(3)),
    (0, Decimal(0)),
    ("2", Decimal(2)),
    ("2.5", Decimal("2.5")),
    (".5", Decimal("0.5")),
    ("1.", Decimal(1)),
    ("+1", Decimal(1)),
    ("-1", Decimal(-1)),
    # decimal SI
    ("500m", Decimal("0.5")),
    ("1500m", Decimal("1.5")),
    ("100n", Decimal("1e-7")),
    ("10u", Decimal("1e-5")),
    ("1k", Decimal(1000)),
    ("2M", Decimal(2 * 10**6)),
    ("16G", Decimal(16 * 10**9)),
    ("1T", Decimal(10**12)),
    ("1P", Decimal(10**15)),
    ("1E", Decimal(10**18)),
    # binary SI
    ("1Ki", Decimal(1024)),
    ("256Mi", Decimal(256 * 2**20)),
    ("2Gi", Decimal(2**31)),
    ("2048Mi", Decimal(2**31)),
    ("1Ti", Decimal(2**40)),
    ("1Pi", Decimal(2**50)),
    ("1Ei", Decimal(2**60)),
    ("1.5Gi", Decimal(3 * 2**29)),
    # decimal exponents
    ("1e3", Decimal(1000)),
    ("1E3", Decimal(1000)),
    ("12e-3", Decimal("0.012")),
    ("1e+2", Decimal(100)),
    # not quantities
    ("x", None),
    ("", None),
    ("1Kb", None),
    ("1K", None),  # kilo is a lower-case k
    ("1mi", None),
    ("Gi", None),
    ("1 Gi", None),
    (" 1", None),
    ("1e", None),
    ("1e1.5", None),  # Kubernetes parses the exponent as an integer
    ("--1", None),
    (True, None),
    (0.5, None),  # YAML's 0.5: a float, not a quantity ("0.5" is one)
    (None, None),
    ([], None),
]


@pytest.mark.parametrize(("value", "parsed"), VALUES, ids=repr)
def test_parse_quantity(value: Any, parsed: Decimal | None) -> None:
    assert parse_quantity(value) == parsed
    assert is_quantity(value) is (parsed is not None)


@pytest.mark.parametrize(("value", "parsed"), VALUES, ids=repr)
def test_what_parses_the_api_servers_pattern_admits(value: Any, parsed: Decimal | None) -> None:
    """The parser is never looser than the CRD's pattern (the API server's own check)."""
    if parsed is not None and isinstance(value, str):
        assert re.fullmatch(QUANTITY_PATTERN, value)


def test_equal_quantities_compare_equal_whatever_the_spelling() -> None:
    assert parse_quantity("2Gi") == parse_quantity("2048Mi") == parse_quantity(2**31)
    assert parse_quantity("1") == parse_quantity("1000m") == parse_quantity("1e0")
    assert parse_quantity("1") != parse_quantity("1500m")


@pytest.mark.parametrize(
    ("cpu", "cores"),
    [
        (None, 1),
        ("100m", 1),
        ("1", 1),
        ("1001m", 2),
        (2, 2),
        ("2.5", 3),
        ("1k", 64),
        ("0", 1),
        ("not-a-cpu", 1),
        ("4e1", 40),
    ],
)
def test_whole_cores(cpu: Any, cores: int) -> None:
    assert whole_cores(cpu, low=1, high=64) == cores
