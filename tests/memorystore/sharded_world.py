"""Shared by the Valkey and Redis Cluster lifecycle tests: InferenceService bodies with a
sharded cache, and instances made behind the operator's back (in the emulator's loop)."""

from __future__ import annotations

import asyncio
from typing import Any

from google.cloud import memorystore_v1, redis_cluster_v1

from memoserve_dev.memorystore_emulator.managed import ManagedBackend
from tests.memorystore.emulator_thread import EmulatorThread
from tests.memorystore.helpers import PARENT, PROJECT
from tests.operator.fake_api import NAMESPACE, isvc_body

NETWORK = f"projects/{PROJECT}/global/networks/default"
VALKEY = f"{PARENT}/instances/{NAMESPACE}-iris"
CLUSTER = f"{PARENT}/clusters/{NAMESPACE}-iris"


def sharded_body(source: str, generation: int = 1, **spec: Any) -> dict[str, Any]:
    """``source``: valkey | redisCluster; small by default (3 shards, no replicas)."""
    fields = {"shardCount": 3, "replicaCount": 0} | spec
    return isvc_body(generation=generation, cache={source: fields})


def backend_of(emulator: EmulatorThread, source: str) -> ManagedBackend:
    return emulator.valkey if source == "valkey" else emulator.cluster


def resource(emulator: EmulatorThread, name: str) -> Any:
    """The instance or cluster as the emulator holds it (no API call counted)."""
    backend = emulator.valkey if "/instances/" in name else emulator.cluster
    return backend.records[name].resource


async def create_behind(
    emulator: EmulatorThread, source: str, resource_id: str, **fields: Any
) -> None:
    """(In the emulator's loop.) Someone else's instance, created and waited for."""
    if source == "valkey":
        psc = [memorystore_v1.PscAutoConnection(network=NETWORK, project_id=PROJECT)]
        message: Any = memorystore_v1.Instance(psc_auto_connections=psc, **fields)
    else:
        psc = [redis_cluster_v1.PscConfig(network=NETWORK)]
        message = redis_cluster_v1.Cluster(psc_configs=psc, **fields)
    operation = backend_of(emulator, source).create(PARENT, resource_id, message)
    # The emulator's own loop: no event to wait on.
    while not emulator.backend.operations.known[operation.name].done:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
