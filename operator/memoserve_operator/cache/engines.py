"""Every engine of the shared lifecycle, by its key (the record's engine, the owned source)."""

from __future__ import annotations

from memoserve_operator.cache.connector import MemorystoreConnector
from memoserve_operator.cache.engine import Engine
from memoserve_operator.cache.memorystore.engine import RedisEngine
from memoserve_operator.cache.sharded.engine import CLUSTER_KIND, VALKEY_KIND, ShardedEngine


def engines_of(connector: MemorystoreConnector) -> dict[str, Engine]:
    engines: list[Engine] = [
        RedisEngine(connector),
        ShardedEngine(VALKEY_KIND, connector),
        ShardedEngine(CLUSTER_KIND, connector),
    ]
    return {engine.key: engine for engine in engines}
