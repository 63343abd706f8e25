"""What a request costs the model, measured as it runs: whether a miss is worth coordinating
with other replicas (the cache's cross-replica lock, MEMOSERVE_CACHE_LOCK_MIN_MODEL_MS).

Written where the model runs (the batcher, the unbatched runner, the front's upstream calls),
read by the data plane on every miss.
"""

from __future__ import annotations


class ModelCost:
    """What one request costs the model: seconds per row, a moving average over its runs, and
    whether that is at least ``expensive_at`` seconds (True until the model has run).

    Written by the model thread after each run, read on the event loop (plain attributes: no
    lock); ``expensive`` is kept up to date so that reading it costs nothing on a cache hit.
    """

    WEIGHT = 0.1  # of the newest run

    def __init__(self, expensive_at: float = 0.0) -> None:
        self.expensive_at = expensive_at
        self.seconds_per_row: float | None = None  # None: the model has not run yet
        self.expensive = True

    def observe(self, seconds: float, rows: int) -> None:
        per_row = seconds / max(rows, 1)
        mean = self.seconds_per_row
        mean = per_row if mean is None else mean + self.WEIGHT * (per_row - mean)
        self.seconds_per_row = mean
        self.expensive = mean >= self.expensive_at
