"""Does a child need a write? A pure comparison of the desired object with the live one.

Server-side apply is idempotent, but an apply that changes nothing is still a write request;
steady state must make none. So each desired object is stamped with a digest of itself
(``serving.memoserve.dev/applied-digest``) and applied only when the live object

- is missing (deleted by hand),
- carries another digest (the spec or the operator changed what it wants, including fields it
  no longer sets, which a field comparison alone cannot see), or
- no longer contains every field the operator sets, with the operator's values (a hand edit).

Fields others add (defaults, the HPA's replicas, status, mutating webhooks' list entries) are
ignored. Quantities compare by value: the API server writes ``2048Mi`` back as ``2Gi``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from memoserve_contract.quantity import parse_quantity
from memoserve_contract.resource.names import qualified

Object = dict[str, Any]

DIGEST_ANNOTATION = qualified("applied-digest")
# Where the API server canonicalises quantities.
QUANTITY_KEYS = frozenset({"requests", "limits", "averageValue", "sizeLimit"})
# Lists of objects that are maps keyed by these fields: others may add entries to them.
LIST_MAP_KEYS = ("name", "uid")


def digest(obj: Object) -> str:
    """A digest of an object as the operator builds it (without its own digest annotation)."""
    clean = copy.deepcopy(obj)
    meta = clean.get("metadata", {})
    meta.get("annotations", {}).pop(DIGEST_ANNOTATION, None)
    if meta.get("annotations") == {}:
        del meta["annotations"]
    canonical = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def stamp(obj: Object) -> Object:
    """A copy of ``obj`` carrying its digest annotation (what gets applied)."""
    stamped = copy.deepcopy(obj)
    meta = stamped.setdefault("metadata", {})
    meta["annotations"] = {**meta.get("annotations", {}), DIGEST_ANNOTATION: digest(obj)}
    return stamped


def needs_apply(stamped: Object, live: Object | None) -> bool:
    """Whether applying ``stamped`` (from ``stamp``) would change ``live``."""
    return live is None or not contains(live, stamped)


def contains(live: Any, want: Any, key: str = "", *, quantities: bool = False) -> bool:
    """Every field of ``want`` is in ``live`` with the same value (``key``: the field's name;
    ``quantities``: inside a map of quantities such as resources.requests)."""
    quantities = quantities or key in QUANTITY_KEYS
    if isinstance(want, dict):
        if not isinstance(live, dict):
            return not want and live is None
        return all(
            contains(live[k], v, k, quantities=quantities) if k in live else _empty(v)
            for k, v in want.items()
        )
    if isinstance(want, list):
        if not isinstance(live, list):
            return not want and live is None
        return _list_contains(live, want, key)
    if live == want:
        return True
    return quantities and _same_quantity(live, want)


def _list_contains(live: list[Any], want: list[Any], key: str) -> bool:
    map_key = _map_key(want)
    if map_key is None:
        return len(live) == len(want) and all(
            contains(a, b, key) for a, b in zip(live, want, strict=True)
        )
    by_key = {item.get(map_key): item for item in live if isinstance(item, dict)}
    return all(contains(by_key.get(item[map_key]), item, key) for item in want)


def _map_key(items: Sequence[Any]) -> str | None:
    for candidate in LIST_MAP_KEYS:
        if items and all(isinstance(item, dict) and candidate in item for item in items):
            return candidate
    return None


def _empty(value: Any) -> bool:
    """The API server drops empty maps and lists: wanting one is satisfied by its absence."""
    return value in ({}, [])


def _same_quantity(a: Any, b: Any) -> bool:
    x, y = parse_quantity(a), parse_quantity(b)
    return x is not None and x == y
