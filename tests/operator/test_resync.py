"""The resync loop's schedule, with no cluster: when each InferenceService gets checked.

The reconciler here is a stand-in of our own ``Checks`` interface that records calls (the
loop's peer is our Reconciler, not an external service); the loop runs on looptime's fake
clock, so minutes pass at once. The loop against the real Reconciler and a Kubernetes API is
tests/operator/test_handlers.py::test_resync_repairs_what_no_event_reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from memoserve_operator.kube.client import Forbidden, Unavailable
from memoserve_operator.reconcile import ReconcileOutcome
from memoserve_operator.resync import (
    REFUSED_RETRY_SECONDS,
    TRANSIENT_RETRY_SECONDS,
    Resync,
)

pytestmark = pytest.mark.looptime

TICK = 5.0


def service(name: str = "iris", namespace: str = "ml") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {}}


class Recorder:
    """Due every ``every`` seconds after its last check; answers with ``answer(name)``."""

    def __init__(self, every: float = 30.0, takes: float = 0.0) -> None:
        self.every = every
        self.takes = takes  # seconds a check takes (a few API calls)
        self.checks: list[tuple[float, str]] = []
        self.bodies_seen: list[dict[str, Any]] = []
        self.answer: Callable[[str], ReconcileOutcome] = lambda _: ReconcileOutcome("ok")
        self.running = 0
        self.most_at_once = 0

    def due(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        self.bodies_seen.append(body)
        last = max((t for t, n in self.checks if n == name), default=None)
        return last is None or asyncio.get_running_loop().time() - last >= self.every

    async def reconcile(self, namespace: str, name: str, *, trigger: str) -> ReconcileOutcome:
        assert trigger == "resync"
        self.checks.append((asyncio.get_running_loop().time(), name))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.takes)
            return self.answer(name)
        finally:
            self.running -= 1


async def run_for(resync: Resync, seconds: float, *bodies: dict[str, Any]) -> None:
    """Run the loop (ticks at 5, 10, ...); ``bodies`` are first seen at t=2."""
    task = asyncio.create_task(resync.run())
    await asyncio.sleep(2)
    for body in bodies:
        resync.observe(None, body)
    await asyncio.sleep(seconds - 2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def times(recorder: Recorder, name: str = "iris") -> list[float]:
    return [round(t) for t, n in recorder.checks if n == name]


async def test_a_new_service_waits_a_tick_then_follows_due() -> None:
    recorder = Recorder(every=30)
    resync = Resync(recorder, tick=TICK)
    await run_for(resync, 99, service())
    # Not at the tick 3 s after it was seen (its create handler reconciles it then), then when due.
    assert times(recorder) == [10, 40, 70]


async def test_a_deleted_service_is_no_longer_checked() -> None:
    recorder = Recorder(every=30)
    resync = Resync(recorder, tick=TICK)
    task = asyncio.create_task(resync.run())
    await asyncio.sleep(2)
    resync.observe(None, service())
    await asyncio.sleep(18)
    resync.observe("DELETED", service())
    await asyncio.sleep(100)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert times(recorder) == [10]


async def test_retry_after_brings_a_check_back_sooner_than_due() -> None:
    recorder = Recorder(every=300)  # settled: due only every 5 minutes
    answers = iter([ReconcileOutcome("waiting", retry_after=12), ReconcileOutcome("ok")])
    recorder.answer = lambda _: next(answers)
    resync = Resync(recorder, tick=TICK)
    await run_for(resync, 60, service())
    # checked at 10 and asked back 12 s later: the first tick at or after 22 is 25
    assert times(recorder) == [10, 25]


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (Unavailable(503, "GET", "inferenceservices", "ml/iris", "down"), TRANSIENT_RETRY_SECONDS),
        (Forbidden(403, "GET", "inferenceservices", "ml/iris", "no"), REFUSED_RETRY_SECONDS),
        (RuntimeError("a bug"), REFUSED_RETRY_SECONDS),
    ],
)
async def test_a_failed_check_comes_back_after_its_delay_and_the_loop_goes_on(
    error: Exception, delay: float
) -> None:
    recorder = Recorder(every=1000)
    failed = False

    def answer(name: str) -> ReconcileOutcome:
        nonlocal failed
        if name == "iris" and not failed:
            failed = True
            raise error
        return ReconcileOutcome("ok")

    recorder.answer = answer
    resync = Resync(recorder, tick=TICK)
    await run_for(resync, 99, service("iris"), service("other"))
    assert times(recorder, "iris") == [10, 10 + delay]  # delays are whole ticks
    assert times(recorder, "other") == [10]  # the failure did not stop the others


async def test_checks_run_at_most_concurrency_at_once() -> None:
    recorder = Recorder(every=30, takes=0.5)
    resync = Resync(recorder, tick=TICK, concurrency=3)
    await run_for(resync, 14, *(service(f"s{index}") for index in range(10)))
    assert len(recorder.checks) == 10  # all of them, in the same sweep
    assert recorder.most_at_once == 3


async def test_the_latest_body_is_what_due_sees() -> None:
    recorder = Recorder()
    resync = Resync(recorder, tick=TICK)
    resync.observe(None, service())
    updated = service() | {"status": {"observedGeneration": 2}}
    resync.observe("MODIFIED", updated)
    await run_for(resync, 11)
    assert recorder.bodies_seen
    assert recorder.bodies_seen[-1] == updated
