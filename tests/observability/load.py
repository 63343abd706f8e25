"""A short load on a cache front that makes every series the dashboard draws: misses, hits,
bypasses, a bad request, identical misses at once (single-flight joins), more distinct misses at
once than the front may send upstream (shed), and, with Redis stopped, cache errors until the
breaker opens."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

MODEL = "affine"


def body(row: float) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [row] * 4}]}


class FrontLoad:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)
        self.seen: Counter[tuple[str, int]] = Counter()  # (X-Memoserve-Cache, status) -> count
        self._row = 0.0

    def close(self) -> None:
        self.client.close()

    def infer(self, payload: Any, **headers: str) -> httpx.Response:
        response = self.client.post(f"/v2/models/{MODEL}/infer", json=payload, headers=headers)
        self.seen[(response.headers.get("x-memoserve-cache", ""), response.status_code)] += 1
        return response

    def new_row(self) -> float:
        self._row += 1
        return self._row

    def misses_then_hits(self, distinct: int, repeats: int) -> None:
        rows = [self.new_row() for _ in range(distinct)]
        for row in rows:
            self.infer(body(row))
        for _ in range(repeats):
            for row in rows:
                self.infer(body(row))

    def bypasses(self, count: int) -> None:
        for _ in range(count):
            self.infer(body(1.0), **{"cache-control": "no-cache"})
        self.infer({"inputs": "not a tensor"})  # 400: invalid, never looked up

    def at_once(self, payloads: list[dict[str, Any]]) -> None:
        with ThreadPoolExecutor(len(payloads)) as pool:
            list(pool.map(lambda p: self.infer(p), payloads))

    def identical_misses(self, count: int) -> None:
        """One question asked ``count`` times at once: one miss runs, the others join it."""
        self.at_once([body(self.new_row())] * count)

    def distinct_misses(self, count: int) -> None:
        """More distinct misses at once than the front may send (upstream_max_connections) or
        queue: the rest are shed with 503."""
        self.at_once([body(self.new_row()) for _ in range(count)])

    def round(self) -> None:
        """Every cache result and every front event once, Redis up."""
        self.misses_then_hits(distinct=4, repeats=2)
        self.bypasses(2)
        self.identical_misses(4)
        self.distinct_misses(3)

    def cache_down(self, count: int) -> None:
        """With Redis gone each request fails its cache call (served uncached, result error)
        until the breaker opens and skips Redis (breaker_open); after its cool-down one probe
        fails again and it reopens."""
        for _ in range(count):
            self.infer(body(self.new_row()))
