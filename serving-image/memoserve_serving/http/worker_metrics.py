"""The metrics of several workers (``MEMOSERVE_WORKERS``) as one pod's.

Prometheus scrapes a pod's port once, and with SO_REUSEPORT the kernel hands that connection
to one worker: its own registry alone would be a random fraction of the pod. So each worker
writes a snapshot of its registry into prometheus_client's multiprocess files (one set per
process, in a directory the parent made), and /metrics, on whichever worker it reaches,
merges every worker's files with prometheus_client's ``MultiProcessCollector``.

Snapshots rather than prometheus_client's own multiprocess values: those write the mmap on
every update (a lock and a struct pack per bucket, per request); here the hot path keeps its
plain numbers and a worker writes them about once a second, and at once before it answers a
scrape. Another worker's figures are at most that old. Counters and histograms add up; every
gauge we export is a count of things in flight, so gauges add up too (``livesum``: the files
of a worker that is gone are not counted; a worker that dies takes the pod down anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample


class _ValueFile(Protocol):
    def write_value(self, key: str, value: float, timestamp: float) -> None: ...
    def close(self) -> None: ...


# prometheus_client's file of one process's values and its merge (untyped in its stubs).
_value_file = cast("Callable[[str], _ValueFile]", MmapedDict)
_merge_into = cast("Callable[[CollectorRegistry, str], object]", MultiProcessCollector)

# How often a worker writes its snapshot for the others.
WRITE_INTERVAL_SECONDS = 1.0
# prometheus_client names a file by metric type (and a gauge's aggregation) and process id.
_FILES = {"counter": "counter", "histogram": "histogram", "gauge": "gauge_livesum"}


class WorkerMetrics:
    """This worker's share of the pod's metrics, in ``directory`` (shared with its siblings)."""

    def __init__(self, registry: CollectorRegistry, directory: Path, pid: int) -> None:
        self._registry = registry
        self._files = {
            kind: _value_file(str(directory / f"{name}_{pid}.db")) for kind, name in _FILES.items()
        }
        self._merged = CollectorRegistry()
        _merge_into(self._merged, str(directory))

    def write(self) -> None:
        """Write this worker's current figures for the others to read."""
        for family in self._registry.collect():
            file = self._files.get(family.type)
            if file is None:
                raise TypeError(f"{family.name}: a {family.type} cannot be merged across workers")
            samples = family.samples
            if family.type == "histogram":
                samples = list(_per_bucket(samples))
            for sample in samples:
                if sample.name.endswith(("_created", "_count")):
                    continue  # the merge counts the buckets; a creation time does not add up
                labels = sample.labels
                key = mmap_key(
                    family.name, sample.name, list(labels), list(labels.values()),
                    family.documentation,
                )  # fmt: skip
                file.write_value(key, sample.value, 0.0)

    def exposition(self) -> bytes:
        """The pod's metrics in the text format: every worker's, this one's as of now."""
        self.write()
        return bytes(generate_latest(self._merged))

    async def keep_writing(self, interval: float = WRITE_INTERVAL_SECONDS) -> None:
        """Write a snapshot every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.write()

    def close(self) -> None:
        for file in self._files.values():
            file.close()


def _per_bucket(samples: Iterable[Sample]) -> Iterable[Sample]:
    """A histogram's samples with each bucket's own count, not the running total the text
    format has: the merge adds the buckets up again after summing the workers."""
    below: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in samples:
        if not sample.name.endswith("_bucket"):
            yield sample
            continue
        series = tuple((k, v) for k, v in sample.labels.items() if k != "le")
        yield sample._replace(value=sample.value - below.get(series, 0.0))
        below[series] = sample.value
