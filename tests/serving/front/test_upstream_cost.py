"""What a call costs the upstream, as the front measures it (whether a miss is worth the
cross-replica lock): a call alone costs its whole time; calls the upstream serves side by side
share it, as the rows of a batch share the batch's time. Against a real server process that
answers each call after a fixed pause, any number at once (peer_scripts/v2_misbehaving.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from memoserve_serving.protocol.metadata import ModelMetadata
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.upstream.backend import UpstreamBackend
from memoserve_serving.upstream.http1 import Http1Pool
from tests.support.peers import PeerServer, misbehaving

PAUSE = 1.0  # the upstream's time per call
AT_ONCE = 16
REQUEST = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'


@pytest.fixture
def paused(tmp_path: Path) -> Iterator[PeerServer]:
    server = misbehaving(tmp_path, "slow", PAUSE).start()
    yield server
    server.stop()


def seconds_per_call(server: PeerServer, at_once: int) -> float:
    """What the front's ModelCost says after ``at_once`` calls sent together."""

    async def calls() -> float:
        pool = Http1Pool(server.url, limit=at_once)
        cost = ModelCost()
        backend = UpstreamBackend(
            pool, server.url, "affine", ModelMetadata((), (), ""), metrics=ServingMetrics("t"),
            timeout=30, max_connections=at_once, max_queued=0, cost=cost,
        )  # fmt: skip
        await asyncio.gather(*(backend.run(decode_request(REQUEST), ()) for _ in range(at_once)))
        await pool.close()
        assert cost.seconds_per_row is not None
        return cost.seconds_per_row

    return asyncio.run(calls())


def test_a_call_alone_costs_its_time_calls_side_by_side_share_it(paused: PeerServer) -> None:
    assert seconds_per_call(paused, 1) >= PAUSE
    # Sixteen calls answered together after PAUSE: the upstream's time per call is PAUSE / 16,
    # not PAUSE (a busy upstream's latency is its queue, not what a call costs it). The moving
    # average lands between (0.3-0.45 x PAUSE, by the order the answers are counted): every
    # call counted at its whole time would give PAUSE or more.
    assert seconds_per_call(paused, AT_ONCE) < PAUSE * 0.8
