"""HIT% tells the truth: what the serving pods publish reaches the InferenceService's status.

kwok runs no containers, so the test publishes the counts the way a serving pod does (the
serving package's own StatsPublisher, over TLS with the AUTH string from the Secret the operator
wrote) into the Memorystore instance the operator created in the emulator.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from memoserve_serving.cache.breaker import CircuitBreaker
from memoserve_serving.cache.nodes import RedisNodes
from memoserve_serving.cache.redis_config import RedisConfig
from memoserve_serving.cache.stats import StatsPublisher
from memoserve_serving.metrics import ServingMetrics
from tests.e2e.helpers import ISVC, apply_isvc, wait_for, wait_ready
from tests.memorystore.emulator_thread import EmulatorThread
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

SPEC = {
    "model": {"uri": "gs://my-models/hits/v1/", "format": "sklearn"},
    "cache": {"memorystore": {"tier": "BASIC", "memorySizeGb": 1}},
}
# The split: the front's pods hold the cache and publish the counts; the model tier has none.
SPLIT = SPEC | {"front": {"enabled": True}}


def _publish(config: RedisConfig, namespace: str, hits: int, lookups: int) -> None:
    async def publish() -> None:
        # The pod's own client (one Redis or a cluster's nodes), as lifespan.py builds it.
        nodes = RedisNodes(
            config, ServingMetrics("e2e"), lambda address: CircuitBreaker(3, 1.0, name=address)
        )
        try:
            await nodes.connect()
            counts = (hits, lookups)
            publisher = StatsPublisher(nodes, namespace, "sha256:e2e-digest", lambda: counts)
            assert await publisher.publish()
        finally:
            await nodes.close()

    asyncio.run(publish())


def _hit_column(plane: ControlPlane, namespace: str, name: str) -> str:
    """The HIT% column as kubectl prints it (by position: a split's REPLICAS has spaces)."""
    header, row = plane.kubectl("get", "misvc", name, "-n", namespace).stdout.splitlines()[:2]
    start = header.index("HIT%")
    if not row[start : start + 1].strip():  # nothing printed there: the column is empty
        return "<none>"
    return row[start:].split()[0]


@pytest.mark.parametrize("spec", [SPEC, SPLIT], ids=["coupled", "split"])
def test_hit_ratio_moves_from_zero_after_repeats(
    spec: dict[str, object],
    control_plane: ControlPlane,
    operator: OperatorProcess,
    memorystore_emulator: EmulatorThread,
    namespace: str,
    tmp_path: Path,
) -> None:
    apply_isvc(control_plane, namespace, "hits", spec)
    wait_ready(control_plane, namespace, "hits", timeout=120)
    secret = control_plane.get("secret", "hits-redis", "-n", namespace)["data"]
    value = {key: base64.b64decode(raw).decode() for key, raw in secret.items()}
    ca_file = None
    if "ca.crt" in value:
        ca_file = tmp_path / "ca.crt"
        ca_file.write_text(value["ca.crt"])
    config = RedisConfig.from_url(value["url"], password=value.get("password"), ca_file=ca_file)
    pods_namespace = f"{namespace}/hits"

    _publish(config, pods_namespace, hits=0, lookups=10)  # ten first questions: all misses
    wait_for(lambda: _hit_column(control_plane, namespace, "hits") == "0%" or None, "HIT% 0%", 60)
    _publish(config, pods_namespace, hits=9, lookups=10)  # the same ten asked again
    ratio = wait_for(
        lambda: (
            ((r := _hit_column(control_plane, namespace, "hits")) not in ("0%", "<none>") and r)
            or None
        ),
        "HIT% above 0",
        60,
    )
    assert ratio == "45%"  # 9 hits of 20 lookups in the window
    status = control_plane.get(ISVC, "hits", "-n", namespace)["status"]
    assert status["cache"]["hitRatio"] == "45%"
    assert status["modelDigest"] == "sha256:e2e-digest"
