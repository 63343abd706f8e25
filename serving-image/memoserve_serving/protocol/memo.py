"""A small bounded memo for the hit path: the same bytes in, the same work's result out.

A cache hit is a question asked before, and its bytes are most often the very bytes of the
earlier call (same client library, same tensor; the ``id``, when a client sets one, changes
them, and then the work is simply done), answered by the very bytes of the cached value. The
memo keeps the results of pure functions of such bytes: the decoded gRPC request
(grpc/infer.py), the tensors of a cached answer (dataplane.py) and their gRPC encoding
(grpc/wire.py). It
holds at most ``max_entries`` results, forgetting the oldest first, and its users give it only
small keys (a few KiB): a memo miss costs one dict lookup, and memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    __slots__ = ("_made", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._made: dict[K, V] = {}

    def get(self, key: K, make: Callable[[K], V]) -> V:
        """``make(key)``: remembered from an earlier call, or made now (and remembered; not if
        ``make`` raises). ``make`` must be a pure function of ``key``, never returning None."""
        made = self._made
        value = made.get(key)
        if value is None:
            value = make(key)
            if len(made) >= self.max_entries:
                del made[next(iter(made))]  # the oldest: dicts keep insertion order
            made[key] = value
        return value

    def __len__(self) -> int:
        return len(self._made)
