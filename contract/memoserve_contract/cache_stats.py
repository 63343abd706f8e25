"""Cache counters the serving pods publish in Redis and the operator reads: the hit ratio in an
InferenceService's status (``status.cache.hitRatio``, the HIT% column) and the model digest the
pods serve (``status.model.digest``).

Every pod adds its counts to one hash per service and minute, ``memoserve:stats:{<ns/name>}:<minute
since the epoch>``, every few seconds (HINCRBY is atomic: no coordination between pods), and sets
the digest of the model it loaded; a hash expires after KEEP_SECONDS. The operator reads the last
WINDOW_MINUTES hashes. Cheap on both sides: one pipelined write per pod every few seconds while
it serves, a few reads per service per status check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PREFIX = "memoserve:stats:"
BUCKET_SECONDS = 60
WINDOW_MINUTES = 5
KEEP_SECONDS = 15 * 60
HITS = "hits"  # answered from the cache (Redis, the L1, or a shared in-flight miss)
LOOKUPS = "lookups"  # every infer request that had a cache (hit, miss, bypass, error)
DIGEST = "digest"  # the model digest of the pod that wrote last


def bucket(now: float) -> int:
    return int(now // BUCKET_SECONDS)


def stats_key(namespace: str, minute: int) -> str:
    """The hash of ``namespace`` (the pods' cache namespace, ``ns/name``) for one minute.

    The namespace is a Redis Cluster hash tag: a service's hashes of every minute share one
    slot, so a reader finds the whole window on one node (one pipeline, no cross-slot reads).
    """
    return f"{PREFIX}{{{namespace}}}:{minute}"


def window_keys(namespace: str, now: float) -> list[str]:
    """The hashes of the last WINDOW_MINUTES, newest first."""
    last = bucket(now)
    return [stats_key(namespace, minute) for minute in range(last, last - WINDOW_MINUTES, -1)]


@dataclass(frozen=True)
class CacheStats:
    hits: int
    lookups: int
    digest: str | None

    @property
    def hit_percent(self) -> int | None:
        """Hits per lookup in whole percent (rounded down: 100 only when every lookup hit);
        None without lookups."""
        return None if self.lookups <= 0 else min(100, self.hits * 100 // self.lookups)


def summarize(hashes: Sequence[Mapping[str, str]]) -> CacheStats:
    """The window's counts from its hashes (newest first, missing ones empty)."""
    hits = lookups = 0
    digest = None
    for values in hashes:
        hits += _count(values.get(HITS))
        lookups += _count(values.get(LOOKUPS))
        if digest is None:
            digest = values.get(DIGEST) or None
    return CacheStats(hits, lookups, digest)


def _count(raw: str | None) -> int:
    try:
        return max(0, int(raw)) if raw is not None else 0
    except ValueError:
        return 0  # not ours to trust: someone else's value in our key
