"""In-process single-flight, including cancellation of some or all waiters."""

from __future__ import annotations

import asyncio
import gc

import pytest

from memoserve_serving.cache.singleflight import SingleFlight


class Work:
    """A computation that counts its runs and finishes when told to."""

    def __init__(self) -> None:
        self.runs = 0
        self.cancelled = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.runs += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return "answer"


async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    callers = [asyncio.ensure_future(flights.do(b"k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    work.release.set()
    results = await asyncio.gather(*callers)
    assert work.runs == 1
    assert [joined for _, joined in results].count(False) == 1
    assert {value for value, _ in results} == {"answer"}
    assert len(flights) == 0


async def test_an_exception_reaches_every_waiter_and_nothing_stays() -> None:
    flights: SingleFlight[str] = SingleFlight()

    async def boom() -> str:
        await asyncio.sleep(0.01)
        raise ValueError("model failed")

    results = await asyncio.gather(
        *(flights.do(b"k", boom) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert len(flights) == 0


async def test_when_the_first_caller_leaves_a_waiter_runs_the_work_afresh() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    leader = asyncio.ensure_future(flights.do(b"k", work))
    await asyncio.sleep(0)
    joiners = [asyncio.ensure_future(flights.do(b"k", work)) for _ in range(3)]
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0.01)
    assert work.cancelled == 1  # the leader's work went with it
    assert work.runs == 2  # and one waiter leads the next flight
    work.release.set()
    results = await asyncio.gather(*joiners)
    assert sorted(results) == [("answer", False), ("answer", True), ("answer", True)]
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert len(flights) == 0


async def test_a_waiter_leaving_does_not_disturb_the_flight() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    leader = asyncio.ensure_future(flights.do(b"k", work))
    await asyncio.sleep(0)
    joiner = asyncio.ensure_future(flights.do(b"k", work))
    await asyncio.sleep(0)
    joiner.cancel()
    await asyncio.sleep(0)
    work.release.set()
    assert await leader == ("answer", False)
    assert work.runs == 1
    assert work.cancelled == 0
    with pytest.raises(asyncio.CancelledError):
        await joiner


async def test_an_exception_with_nobody_waiting_is_not_logged_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flights: SingleFlight[str] = SingleFlight()

    async def boom() -> str:
        raise ValueError("model failed")

    with pytest.raises(ValueError, match="model failed"):
        await flights.do(b"k", boom)
    gc.collect()  # a lost exception is logged when its future is collected
    assert "never retrieved" not in caplog.text


async def test_when_every_waiter_leaves_the_work_is_cancelled_and_forgotten() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    callers = [asyncio.ensure_future(flights.do(b"k", work)) for _ in range(3)]
    await asyncio.sleep(0)
    for caller in callers:
        caller.cancel()
    # A newcomer in the very same iteration must start afresh, not join the dying flight.
    newcomer = asyncio.ensure_future(flights.do(b"k", work))
    await asyncio.sleep(0.01)
    assert work.cancelled == 1
    work.release.set()
    assert await newcomer == ("answer", False)
    assert work.runs == 2
    assert len(flights) == 0
