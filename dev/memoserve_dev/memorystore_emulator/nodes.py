"""The processes behind a Valkey instance or a Redis Cluster: real ``redis-server`` nodes.

- :class:`ClusterNodes`: cluster mode, ``shards`` primaries with ``replicas`` replicas each
  (:class:`memoserve_dev.redis_cluster.RedisCluster`), scaled in place with the keys kept
  (:mod:`memoserve_dev.memorystore_emulator.scaling`);
- :class:`StandaloneNodes`: Valkey's CLUSTER_DISABLED mode, one primary and its replicas
  (``REPLICAOF``), no cluster mode, as Memorystore serves it.

No password on any node: Memorystore's IAM AUTH checks tokens the emulator cannot check, so its
nodes take ``AUTH <any token>`` (the default user is ``nopass``: any password is accepted) and
also a client that sends none. Methods block: call them from a thread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from memoserve_dev.memorystore_emulator.ports import cluster_ports
from memoserve_dev.memorystore_emulator.scaling import Scaler
from memoserve_dev.redis_cluster import RedisCluster
from memoserve_dev.redis_server import RedisServer, RedisServerError
from memoserve_dev.tls import TlsFiles

REPLICA_SECONDS = 30.0
# Longer than the launcher's 1 s: a few processes on two busy cores, moving slots, must not
# look failed (a failover would move the discovery endpoint's node out of its role).
NODE_TIMEOUT_MS = 5000


def config_set(nodes: list[RedisServer], configs: Mapping[str, str]) -> None:
    """Change configs in place (CONFIG SET), as Memorystore does: no restart, data kept."""
    for node in nodes:
        for key, value in configs.items():
            node.cli("CONFIG", "SET", key, value)


@dataclass(frozen=True)
class NodeSpec:
    """What the processes need from an instance or a cluster."""

    shards: int
    replicas: int
    cluster_mode: bool = True
    configs: Mapping[str, str] = field(default_factory=dict)


class ClusterNodes:
    def __init__(self, workdir: Path, host: str, spec: NodeSpec, tls: TlsFiles | None) -> None:
        self.cluster = RedisCluster(
            workdir,
            shards=spec.shards,
            replicas=spec.replicas,
            host=host,
            tls=tls,
            config=dict(spec.configs),
            ports=cluster_ports(host, spec.shards * (1 + spec.replicas)),
            node_timeout_ms=NODE_TIMEOUT_MS,
        )
        self.scaler = Scaler(self.cluster)

    @property
    def endpoint(self) -> tuple[str, int]:
        """The discovery endpoint: the seed node (clients learn the others from it)."""
        return self.cluster.host, self.cluster.seed.port

    @property
    def processes(self) -> list[RedisServer]:
        return list(self.cluster.nodes)

    def start(self) -> None:
        self.cluster.start()
        try:
            self.scaler.settle()
        except BaseException:
            self.cluster.stop()
            raise

    def scale(self, shards: int, replicas: int) -> None:
        self.scaler.scale(shards, replicas)

    def configure(self, configs: Mapping[str, str]) -> None:
        config_set(self.processes, configs)

    def stop(self) -> None:
        self.cluster.stop()


class StandaloneNodes:
    """One primary and ``replicas`` replicas of it; the endpoint is the primary."""

    def __init__(self, workdir: Path, host: str, spec: NodeSpec, tls: TlsFiles | None) -> None:
        self.workdir, self.host, self.tls = workdir, host, tls
        self.configs = dict(spec.configs) | ({"tls-replication": "yes"} if tls else {})
        self.primary = self._node("primary")
        self.replicas: list[RedisServer] = []
        self._wanted, self._made = spec.replicas, 0

    def _node(self, name: str) -> RedisServer:
        return RedisServer(self.workdir / name, host=self.host, tls=self.tls, config=self.configs)

    @property
    def endpoint(self) -> tuple[str, int]:
        return self.host, self.primary.port

    @property
    def processes(self) -> list[RedisServer]:
        return [self.primary, *self.replicas]

    def start(self) -> None:
        try:
            self.primary.start()
            self.scale(1, self._wanted)
        except BaseException:
            self.stop()
            raise

    def scale(self, shards: int, replicas: int) -> None:
        if shards != 1:
            raise ValueError("a CLUSTER_DISABLED instance has one shard")
        while len(self.replicas) > replicas:
            self.replicas.pop().stop()
        while len(self.replicas) < replicas:
            self._made += 1
            node = self._node(f"replica-{self._made}")
            node.start()
            self.replicas.append(node)
            node.cli("REPLICAOF", self.host, str(self.primary.port))
        for node in self.replicas:
            self._wait_synced(node)

    def _wait_synced(self, node: RedisServer) -> None:
        deadline = time.monotonic() + REPLICA_SECONDS
        while "master_link_status:up" not in node.cli("INFO", "replication"):
            if time.monotonic() > deadline:
                raise RedisServerError(f"replica {node.port}: no link to its primary")
            time.sleep(0.05)

    def configure(self, configs: Mapping[str, str]) -> None:
        config_set(self.processes, configs)

    def stop(self) -> None:
        for node in [*self.replicas, self.primary]:
            node.stop()


Nodes = ClusterNodes | StandaloneNodes


def make_nodes(workdir: Path, host: str, spec: NodeSpec, tls: TlsFiles | None) -> Nodes:
    kind = ClusterNodes if spec.cluster_mode else StandaloneNodes
    return kind(workdir, host, spec, tls)
