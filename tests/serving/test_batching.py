"""The Batcher on its own: what goes into one model call, and what each caller gets back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from memoserve_serving.batching import Batcher
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from tests.support.models import AffineModel

MakeBatcher = Callable[..., Batcher]


@pytest.fixture
async def make_batcher() -> AsyncIterator[MakeBatcher]:
    batchers: list[Batcher] = []
    executor = ThreadPoolExecutor(max_workers=1)

    def make(
        model: AffineModel,
        *,
        max_size: int = 8,
        max_wait_ms: float = 50,
        cost: ModelCost | None = None,
    ) -> Batcher:
        batcher = Batcher(
            model,
            executor,
            ServingMetrics("m"),
            max_size=max_size,
            max_wait_ms=max_wait_ms,
            cost=cost,
        )
        batcher.start()
        batchers.append(batcher)
        return batcher

    yield make
    for batcher in batchers:
        await batcher.stop()
    executor.shutdown(wait=True)


def rows(first: float, count: int = 1) -> dict[str, np.ndarray[Any, Any]]:
    return {"x": np.full((count, 4), first, dtype=np.float32)}


async def test_concurrent_requests_share_a_call_and_get_their_own_rows(
    make_batcher: MakeBatcher,
) -> None:
    model = AffineModel()
    batcher = make_batcher(model, max_size=8)
    results = await asyncio.gather(*(batcher.submit(rows(i), []) for i in range(8)))
    assert model.rows_seen == [8]  # a full batch goes at once, without waiting out max_wait
    for i, result in enumerate(results):
        assert result["y"].tolist() == [[2.0 * i + 1] * 4]


async def test_a_batch_never_exceeds_max_size_rows(make_batcher: MakeBatcher) -> None:
    model = AffineModel()
    batcher = make_batcher(model, max_size=4)
    counts = [3 if i % 2 else 1 for i in range(10)]
    results = await asyncio.gather(*(batcher.submit(rows(i, n), []) for i, n in enumerate(counts)))
    assert sum(model.rows_seen) == 20
    assert max(model.rows_seen) <= 4
    for i, (count, result) in enumerate(zip(counts, results, strict=True)):
        assert result["y"].tolist() == [[2.0 * i + 1] * 4] * count  # its own rows, all of them


async def test_a_lone_request_waits_at_most_max_wait(make_batcher: MakeBatcher) -> None:
    model = AffineModel()
    batcher = make_batcher(model, max_size=32, max_wait_ms=20)
    result = await asyncio.wait_for(batcher.submit(rows(1.0), []), timeout=5)
    assert result["sum"].tolist() == [12.0]
    assert model.rows_seen == [1]


async def test_requests_that_cannot_share_a_call_go_in_separate_batches(
    make_batcher: MakeBatcher,
) -> None:
    model = AffineModel()
    batcher = make_batcher(model, max_size=8)
    both, only_sum = await asyncio.gather(
        batcher.submit(rows(1.0), []), batcher.submit(rows(2.0), ["sum"])
    )
    assert set(both) == {"y", "sum"}
    assert set(only_sum) == {"sum"}
    assert only_sum["sum"].tolist() == [20.0]
    assert model.calls == 2


async def test_a_model_failure_reaches_every_caller_of_the_batch_and_the_next_batch_runs(
    make_batcher: MakeBatcher,
) -> None:
    model = AffineModel(fail_on=7.0)
    batcher = make_batcher(model, max_size=2)
    failed = await asyncio.gather(
        batcher.submit(rows(7.0), []), batcher.submit(rows(1.0), []), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in failed)
    assert (await batcher.submit(rows(1.0), []))["sum"].tolist() == [12.0]


async def test_a_cancelled_caller_is_left_out_of_the_model_call(make_batcher: MakeBatcher) -> None:
    model = AffineModel(delay=0.05)
    batcher = make_batcher(model, max_size=8, max_wait_ms=0)
    busy = asyncio.ensure_future(batcher.submit(rows(0.0), []))  # keeps the model busy
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(batcher.submit(rows(1.0), []))
    stays = asyncio.ensure_future(batcher.submit(rows(2.0), []))
    await asyncio.sleep(0)
    gone.cancel()
    assert (await stays)["sum"].tolist() == [20.0]
    await busy
    assert model.rows_seen == [1, 1]


def test_model_cost_is_unknown_until_the_first_run_then_a_moving_average() -> None:
    cost = ModelCost(expensive_at=0.002)
    assert cost.seconds_per_row is None
    assert cost.expensive  # unknown counts as expensive
    cost.observe(0.032, 32)
    assert cost.seconds_per_row == pytest.approx(0.001)
    assert not cost.expensive


def test_model_cost_follows_a_model_that_got_slower() -> None:
    cost = ModelCost(expensive_at=0.002)
    cost.observe(0.001, 1)
    for _ in range(100):
        cost.observe(0.005, 1)
    assert cost.seconds_per_row == pytest.approx(0.005, rel=1e-3)
    assert cost.expensive


def test_model_cost_weighs_a_run_by_its_rows() -> None:
    cost = ModelCost(expensive_at=0.001)
    for _ in range(50):  # a slow call of one row, then a quick batch of thirty, and again
        cost.observe(0.010, 1)
        cost.observe(0.003, 30)
    assert cost.seconds_per_row is not None
    assert cost.seconds_per_row < 0.001  # ~13 ms for 31 rows, not the mean of 10 and 0.1 ms
    assert not cost.expensive


async def test_the_batcher_reports_the_cost_per_row(make_batcher: MakeBatcher) -> None:
    cost = ModelCost()
    batcher = make_batcher(AffineModel(delay=0.02), max_size=4, cost=cost)
    await asyncio.gather(*(batcher.submit(rows(i), []) for i in range(4)))
    assert cost.seconds_per_row is not None
    assert 0.004 <= cost.seconds_per_row < 0.02  # one 20 ms call shared by 4 rows


async def test_a_request_of_zero_rows_is_answered(make_batcher: MakeBatcher) -> None:
    batcher = make_batcher(AffineModel(), max_size=8, max_wait_ms=1)
    result = await asyncio.wait_for(batcher.submit(rows(1.0, count=0), []), timeout=5)
    assert result["y"].shape == (0, 4)
