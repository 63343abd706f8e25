"""The cache counts contract between the serving pods and the operator (pure)."""

from __future__ import annotations

import pytest

from memoserve_contract import cache_stats
from memoserve_contract.cache_stats import CacheStats, summarize


def test_window_keys_are_the_last_minutes_newest_first() -> None:
    now = 1_000_000 * 60 + 59.9
    assert cache_stats.window_keys("ml/iris", now) == [
        f"memoserve:stats:{{ml/iris}}:{minute}" for minute in range(1_000_000, 999_995, -1)
    ]


def test_summarize_adds_the_window_and_takes_the_newest_digest() -> None:
    hashes = [
        {},  # this minute: nothing yet
        {"hits": "7", "lookups": "10", "digest": "sha256:new"},
        {"hits": "1", "lookups": "10", "digest": "sha256:old"},
        {"hits": "garbage", "lookups": "-5"},  # not ours: ignored
    ]
    assert summarize(hashes) == CacheStats(8, 20, "sha256:new")


@pytest.mark.parametrize(
    ("hits", "lookups", "percent"),
    [(0, 0, None), (0, 10, 0), (1, 3, 33), (2, 3, 66), (999, 1000, 99), (5, 5, 100), (9, 5, 100)],
)
def test_hit_percent_rounds_down(hits: int, lookups: int, percent: int | None) -> None:
    assert CacheStats(hits, lookups, None).hit_percent == percent
