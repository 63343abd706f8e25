"""What a request costs the model, measured as it runs: whether a miss is worth coordinating
with other replicas (the cache's cross-replica lock, MEMOSERVE_CACHE_LOCK_MIN_MODEL_MS).

Written where the model runs (the batcher, the unbatched runner, the front's upstream calls),
read by the data plane on every miss.
"""

from __future__ import annotations


class ModelCost:
    """What one request costs the model: seconds per row over its recent runs, and whether that
    is at least ``expensive_at`` seconds (True until the model has run).

    The moving average is of seconds and of rows, and their ratio the cost per row: a run
    weighs by its rows, so a run of one row that took long (on a front: a call answered while
    its event loop was busy with the last batch's rows) does not count as much as a batch of
    thirty. Written by the model thread after each run, read on the event loop (plain
    attributes: no lock); ``expensive`` is kept up to date so that reading it costs nothing on
    a cache hit.
    """

    WEIGHT = 0.1  # of the newest run

    def __init__(self, expensive_at: float = 0.0) -> None:
        self.expensive_at = expensive_at
        self.seconds_per_row: float | None = None  # None: the model has not run yet
        self.expensive = True
        self._seconds = 0.0  # moving averages of a run's seconds and rows
        self._rows = 0.0

    def observe(self, seconds: float, rows: int) -> None:
        rows = max(rows, 1)
        if self.seconds_per_row is None:
            self._seconds, self._rows = seconds, float(rows)
        else:
            self._seconds += self.WEIGHT * (seconds - self._seconds)
            self._rows += self.WEIGHT * (rows - self._rows)
        per_row = self.seconds_per_row = self._seconds / self._rows
        self.expensive = per_row >= self.expensive_at
