"""How often the operator asks Memorystore again: polls while an operation runs, backoff after
errors, and a short memory of a settled answer (every API call counts against a quota).

Kept in the operator's memory only: after a restart the first reconcile asks at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.settings import OperatorSettings

Kind = Literal["ready", "waiting", "failed"]


@dataclass(frozen=True)
class MemorystoreOutcome:
    """What one look at Memorystore concluded; ``retryable`` matters for failures only."""

    kind: Kind
    outcome: CacheOutcome
    retryable: bool = True


@dataclass
class _Pace:
    digest: str
    polls: int = 0
    failures: int = 0
    not_before: float = 0.0
    repeat: CacheOutcome | None = None  # a failure until not_before, a ready answer until then


class Pacer:
    """Per service: the retry delay of each result, and whether to ask the API at all."""

    def __init__(
        self, settings: OperatorSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._first = settings.memorystore_poll_seconds
        self._max = settings.memorystore_max_backoff_seconds
        self._refresh = settings.memorystore_refresh_seconds
        self._clock = clock
        self._paces: dict[str, _Pace] = {}

    def _delay(self, count: int) -> float:
        return min(self._first * 2.0 ** max(count - 1, 0), self._max)

    def skip(self, key: str, digest: str) -> CacheOutcome | None:
        """The answer to give without asking the API (None: ask): a failure still backing off,
        or a ready instance seen less than ``memorystore_refresh_seconds`` ago."""
        pace = self._paces.get(key)
        if pace is None or pace.digest != digest or pace.repeat is None:
            return None
        left = pace.not_before - self._clock()
        if left <= 0:
            return None
        retry = pace.repeat.retry_after
        return replace(pace.repeat, retry_after=None if retry is None else left)

    def record(self, key: str, digest: str, result: MemorystoreOutcome) -> CacheOutcome:
        """``result``'s outcome with its retry delay; remembers what the next look needs."""
        pace = self._paces.get(key)
        if pace is None or pace.digest != digest:
            pace = self._paces[key] = _Pace(digest)
        now = self._clock()
        if result.kind == "ready":
            self._paces[key] = _Pace(digest, not_before=now + self._refresh, repeat=result.outcome)
            return result.outcome
        if result.kind == "waiting":
            pace.polls, pace.repeat = pace.polls + 1, None
            return replace(result.outcome, retry_after=self._delay(pace.polls))
        pace.failures, pace.polls = pace.failures + 1, 0
        delay = self._delay(pace.failures + 1) if result.retryable else None
        pace.not_before = now + delay if delay is not None else math.inf
        outcome = replace(result.outcome, retry_after=delay)
        pace.repeat = outcome
        return outcome

    def forget(self, key: str) -> None:
        self._paces.pop(key, None)

    def previous(self, key: str) -> CacheOutcome | None:
        """The last failure (or ready answer) remembered for ``key``."""
        pace = self._paces.get(key)
        return pace.repeat if pace else None
