"""The Redis the cache tests run against, one primary or a cluster, behind one small API, so
that the same test cases run on both (see the ``redis_peer`` fixture in tests/serving/cache)."""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_dev.redis_cluster import RedisCluster
from memoserve_dev.redis_server import RedisServer


@dataclass
class OnePrimary:
    server: RedisServer

    @property
    def url(self) -> str:
        return self.server.url

    def cli(self, *command: str) -> str:
        """A command about keys, as redis-cli prints its reply."""
        return self.server.cli(*command)

    def on_primaries(self, *command: str) -> list[str]:
        return [self.server.cli(*command)]

    def command_calls(self, command: str) -> int:
        return self.server.command_calls(command)

    def keys_per_primary(self) -> list[int]:
        return [int(self.server.cli("DBSIZE"))]

    def reset(self) -> None:
        self.server.start()  # a fault test may have left it stopped
        self.server.cli("FLUSHALL")
        self.server.cli("CONFIG", "RESETSTAT")


@dataclass
class Cluster:
    cluster: RedisCluster

    @property
    def url(self) -> str:
        return self.cluster.url

    def cli(self, *command: str) -> str:
        return self.cluster.key_cli(*command)

    def on_primaries(self, *command: str) -> list[str]:
        return self.cluster.on_primaries(*command)

    def command_calls(self, command: str) -> int:
        return sum(node.command_calls(command) for node in self.cluster.primaries())

    def keys_per_primary(self) -> list[int]:
        return [int(count) for count in self.cluster.on_primaries("DBSIZE")]

    def reset(self) -> None:
        self.cluster.on_primaries("FLUSHALL")
        for node in self.cluster.nodes:
            if node.running:
                node.cli("CONFIG", "RESETSTAT")


RedisPeer = OnePrimary | Cluster
