"""Every engine of the shared lifecycle, by its key (the record's engine, the owned source)."""

from __future__ import annotations

from memoserve_operator.cache.connector import MemorystoreConnector
from memoserve_operator.cache.engine import Engine
from memoserve_operator.cache.memorystore.engine import RedisEngine
from memoserve_operator.cache.sharded.engine import CLUSTER, VALKEY, ShardedEngine


def engines_of(connector: MemorystoreConnector) -> dict[str, Engine]:
    engines: list[Engine] = [
        RedisEngine(connector),
        ShardedEngine(VALKEY, connector),
        ShardedEngine(CLUSTER, connector),
    ]
    return {engine.key: engine for engine in engines}
