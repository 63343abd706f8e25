"""A circuit breaker: stop paying a timeout per request while Redis is down or hung.

closed --(``failures`` consecutive failures)--> open --(``reset_seconds``)--> half-open
half-open lets ONE probe through: success -> closed, failure -> open for another period.

While open, :meth:`CircuitBreaker.allow` answers False without any I/O, so a request costs
nothing; without the breaker every request would wait one full timeout on a hung Redis.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # a probe is out; everyone else still fails fast


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        reset_seconds: float,
        *,
        name: str = "redis",
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if failures < 1 or reset_seconds <= 0:
            raise ValueError("need failures >= 1 and reset_seconds > 0")
        self._threshold = failures
        self._reset = reset_seconds
        self._name = name
        self._clock = clock
        self._on_change = on_change  # told True when it opens, False when it closes again
        self._failures = 0
        # None while closed; otherwise no call is allowed before this time. Granting the
        # half-open probe pushes it one period further: the other callers keep failing fast,
        # and a probe that never reports (its request was cancelled) cannot wedge the breaker,
        # since another probe is allowed a period later.
        self._blocked_until: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._blocked_until is None:
            return BreakerState.CLOSED
        return BreakerState.HALF_OPEN if self._probing else BreakerState.OPEN

    def ready(self) -> bool:
        """Would :meth:`allow` say yes now? (Asks without taking the half-open probe.)"""
        blocked_until = self._blocked_until
        return blocked_until is None or self._clock() >= blocked_until

    def allow(self) -> bool:
        """May a call go to Redis now? (Closed: always; open: only the half-open probe.)"""
        blocked_until = self._blocked_until
        if blocked_until is None:
            return True
        now = self._clock()
        if now < blocked_until:
            return False
        self._blocked_until = now + self._reset
        if not self._probing:
            log.info("%s circuit breaker half-open: probing", self._name)
        self._probing = True
        return True

    def success(self) -> None:
        self._failures = 0
        if self._blocked_until is not None:
            self._blocked_until = None
            self._probing = False
            log.warning("%s circuit breaker closed: %s is back", self._name, self._name)
            if self._on_change is not None:
                self._on_change(False)

    def failure(self) -> None:
        self._failures += 1
        if self._blocked_until is not None:
            # The probe failed (or a call sent before opening): another full cool-down.
            self._blocked_until = self._clock() + self._reset
            self._probing = False
        elif self._failures >= self._threshold:
            self._blocked_until = self._clock() + self._reset
            log.warning(
                "%s circuit breaker open after %d consecutive failures: uncached for %.1f s",
                self._name,
                self._failures,
                self._reset,
            )
            if self._on_change is not None:
                self._on_change(True)
