"""Circuit breaker state machine (pure; the clock is passed in)."""

from __future__ import annotations

import pytest

from memoserve_serving.cache.breaker import BreakerState, CircuitBreaker


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """(A call, so that mypy does not carry a narrowed property across state changes.)"""
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_opens_after_consecutive_failures_only(clock: Clock) -> None:
    breaker = CircuitBreaker(3, 1.0, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # resets the streak
    breaker.failure()
    breaker.failure()
    assert state_of(breaker) == BreakerState.CLOSED
    assert breaker.allow()
    breaker.failure()
    assert state_of(breaker) == BreakerState.OPEN
    assert not breaker.allow()


def test_half_open_lets_one_probe_through_and_success_closes(clock: Clock) -> None:
    breaker = CircuitBreaker(1, 1.0, clock=clock)
    breaker.failure()
    clock.now += 0.99
    assert not breaker.allow()
    clock.now += 0.02
    assert breaker.allow()  # the probe
    assert state_of(breaker) == BreakerState.HALF_OPEN
    assert not breaker.allow()  # everyone else still fails fast
    assert not breaker.allow()
    breaker.success()
    assert state_of(breaker) == BreakerState.CLOSED
    assert breaker.allow()


def test_failed_probe_reopens_for_a_full_period(clock: Clock) -> None:
    breaker = CircuitBreaker(2, 1.0, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.now += 1.0
    assert breaker.allow()
    clock.now += 0.3  # the probe took a while, then failed
    breaker.failure()
    assert state_of(breaker) == BreakerState.OPEN
    clock.now += 0.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()


def test_a_probe_that_never_reports_does_not_wedge_it(clock: Clock) -> None:
    breaker = CircuitBreaker(1, 1.0, clock=clock)
    breaker.failure()
    clock.now += 1.0
    assert breaker.allow()  # the probe's request is cancelled: no success, no failure
    clock.now += 0.5
    assert not breaker.allow()
    clock.now += 0.6
    assert breaker.allow()  # another probe


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="failures"):
        CircuitBreaker(0, 1.0)
    with pytest.raises(ValueError, match="reset_seconds"):
        CircuitBreaker(1, 0)


def test_it_says_when_it_opens_and_closes_once_each(clock: Clock) -> None:
    changes: list[bool] = []
    breaker = CircuitBreaker(2, 1.0, clock=clock, on_change=changes.append)
    breaker.failure()
    assert changes == []
    breaker.failure()
    assert changes == [True]
    clock.now += 1.01
    assert breaker.allow()  # half-open: still open as far as the cache is concerned
    breaker.failure()  # the probe failed: open again, not news
    clock.now += 1.01
    assert breaker.allow()
    breaker.success()
    breaker.success()
    assert changes == [True, False]
