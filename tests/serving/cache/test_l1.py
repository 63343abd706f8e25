"""The in-process L1: byte bound, TTL, LRU order (pure; the clock is passed in)."""

from __future__ import annotations

from memoserve_serving.cache.l1 import ENTRY_OVERHEAD, L1Cache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def size(key: bytes, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


def test_bounded_by_bytes_evicting_least_recently_used() -> None:
    value = b"x" * 100
    room = 3 * size(b"k1", value)
    l1 = L1Cache(room, 60.0)
    for key in (b"k1", b"k2", b"k3"):
        l1.put(key, value)
    assert l1.nbytes == room
    assert l1.get(b"k1") == value  # k1 is now the most recently used
    l1.put(b"k4", value)
    assert l1.get(b"k2") is None  # k2 was the least recently used
    assert [k in l1 for k in (b"k1", b"k3", b"k4")] == [True, True, True]
    assert l1.nbytes <= room


def test_a_big_value_evicts_as_many_as_needed() -> None:
    l1 = L1Cache(1000, 60.0)
    for i in range(5):
        l1.put(b"k%d" % i, b"v" * 10)
    l1.put(b"big", b"b" * 700)
    assert l1.nbytes <= 1000
    assert l1.get(b"big") == b"b" * 700
    assert len(l1) == 1 + (1000 - size(b"big", b"b" * 700)) // size(b"k0", b"v" * 10)


def test_values_larger_than_the_whole_cache_are_not_kept() -> None:
    l1 = L1Cache(500, 60.0)
    l1.put(b"small", b"s")
    l1.put(b"huge", b"h" * 1000)
    assert l1.get(b"huge") is None
    assert l1.get(b"small") == b"s"
    l1.put(b"small", b"h" * 1000)  # a replacement that does not fit removes the old value
    assert l1.get(b"small") is None
    assert l1.nbytes == 0


def test_replacing_a_value_keeps_the_accounting_right() -> None:
    l1 = L1Cache(10_000, 60.0)
    l1.put(b"k", b"a" * 10)
    l1.put(b"k", b"b" * 500)
    assert l1.nbytes == size(b"k", b"b" * 500)
    l1.discard(b"k")
    assert l1.nbytes == 0
    assert len(l1) == 0


def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    l1 = L1Cache(10_000, 1.0, clock=clock)
    l1.put(b"old", b"1")
    clock.now = 0.6
    l1.put(b"new", b"2")
    assert l1.get(b"old") == b"1"  # reading does not extend the TTL
    clock.now = 1.0
    assert l1.get(b"old") is None
    assert l1.get(b"new") == b"2"
    clock.now = 1.6
    assert l1.get(b"new") is None
    assert l1.nbytes == 0


def test_zero_bytes_means_off() -> None:
    l1 = L1Cache(0, 1.0)
    l1.put(b"k", b"v")
    assert l1.get(b"k") is None
    assert len(l1) == 0
