"""How an instance differs from what the spec asks (pure helpers every engine's plan uses).

An engine's ``compare(desired, actual)`` says which fields change in place (the update mask,
or an upgrade) and which only a new instance can have, which the operator never does by
itself: the old instance keeps serving and CacheRecreateRequired names each difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Changes:
    update: tuple[str, ...] = ()  # update mask (proto field names)
    upgrade: str | None = None  # a newer version, by an upgrade call (Memorystore for Redis)
    recreate: tuple[str, ...] = ()  # "field: actual -> desired" that only a new instance has
    summary: str = ""  # "field: actual -> desired, ..." of ``update``, for Events


def differs(desired: object, actual: object) -> bool:
    """Maps (labels, configs): only the keys the spec names count, so that a label or a config
    someone else set is not fought over."""
    if isinstance(desired, Mapping) and isinstance(actual, Mapping):
        return any(actual.get(key) != value for key, value in desired.items())
    return desired != actual


def show(value: object, field: str) -> str:
    if field == "labels":
        return "(changed)"
    return str(dict(value) if isinstance(value, Mapping) else value)


def summary(desired: Any, actual: Any, fields: Iterable[str]) -> str:
    return ", ".join(
        f"{f}: {show(getattr(actual, f), f)} -> {show(getattr(desired, f), f)}" for f in fields
    )


def immutable(desired: Any, actual: Any, fields: Iterable[str], *, unset: object = "") -> list[str]:
    """ "field: actual -> desired" for each of ``fields`` the spec sets (not ``unset``) to
    something else than the instance has."""
    return [
        f"{f}: {getattr(actual, f) or '(default)'} -> {getattr(desired, f)}"
        for f in fields
        if getattr(desired, f) != unset and getattr(desired, f) != getattr(actual, f)
    ]


def moved(desired_name: str, actual_name: str) -> list[str]:
    """A different project or region: "location: here -> there"."""
    here, there = (name.rsplit("/", 2)[0] for name in (actual_name, desired_name))
    return [f"location: {here} -> {there}"] if here != there else []


def recreate_message(changes: Changes, name: str, gcloud: str) -> str:
    """CacheRecreateRequired's message: what differs, and how to get the new instance."""
    return (
        f"{'; '.join(changes.recreate)}: only a new instance can have that, and memoserve "
        f"never replaces one by itself; {name} keeps serving. To move, delete it "
        f"({gcloud} delete): the operator then creates one as specified"
    )
