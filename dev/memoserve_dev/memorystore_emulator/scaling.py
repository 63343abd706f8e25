"""Scaling a running :class:`~memoserve_dev.redis_cluster.RedisCluster` in place, keys kept, as
Memorystore does on an update of shard_count or replica_count:

- shards up: new empty primaries (and their replicas) join with ``redis-cli --cluster add-node``,
  then ``rebalance --cluster-use-empty-masters`` moves slots and their keys to them;
- shards down: ``rebalance`` with weight 0 empties the primaries to go, then ``del-node``
  (replicas first) makes the others forget them and shuts them down;
- replicas up or down: ``add-node --cluster-slave`` / ``del-node`` per shard.

The seed node (the discovery endpoint) always stays. Blocking: call from a thread.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections import Counter

from memoserve_dev.memorystore_emulator.ports import cluster_ports
from memoserve_dev.redis_cluster import RedisCluster
from memoserve_dev.redis_server import RedisServer, RedisServerError

JOIN_SECONDS = 30.0
ATTEMPTS = 3
log = logging.getLogger(__name__)


class Scaler:
    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self._made = len(cluster.nodes)  # node-N directories used so far

    def scale(self, shards: int, replicas: int) -> None:
        if shards < 1 or replicas < 0:
            raise ValueError("need shards >= 1 and replicas >= 0")
        self._seed_primary()
        if shards > self.cluster.shards:
            self._add_shards(shards - self.cluster.shards)
        elif shards < self.cluster.shards:
            self._remove_shards(self.cluster.shards - shards)
        if replicas != self.cluster.replicas:
            self._set_replicas(replicas)
        self.cluster.wait_ok()

    def settle(self) -> None:
        """After the launcher's start: a node meant to be a replica whose ``CLUSTER REPLICATE``
        was refused (it did not know its primary yet; redis-cli exits 0 on an error reply)
        is a primary without slots. Make each such node a replica of a shard short of them."""
        deadline = time.monotonic() + JOIN_SECONDS
        while True:
            infos = self.cluster.topology()
            empty = [i for i in infos if i.primary and not i.slots and not i.failed]
            if not empty:
                return
            if time.monotonic() > deadline:
                raise RedisServerError(f"{self.cluster.workdir}: nodes without a role")
            count = Counter(i.primary_id for i in infos if not i.primary)
            shards = [i for i in infos if i.primary and i.slots]
            for info in empty:
                target = min(shards, key=lambda s: count[s.node_id])
                count[target.node_id] += 1
                node = self.cluster.node_for_port(info.port)
                log.info("%s: node %d replicates %d", self.cluster.workdir, info.port, target.port)
                node.cli("CLUSTER", "REPLICATE", target.node_id)
            time.sleep(0.2)
            self.cluster.wait_ok()

    def _seed_primary(self) -> None:
        """Make the seed a primary again if a failover made it a replica: it must stay (it is
        the discovery endpoint), and only primaries' replicas are removed."""
        seed = self.cluster.seed
        if seed.cli("ROLE").splitlines()[0] == "master":
            return
        log.info("%s: seed %d is a replica: failing over to it", self.cluster.workdir, seed.port)
        seed.cli("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + JOIN_SECONDS
        while not self._all_see_primary(seed):
            if time.monotonic() > deadline:
                raise RedisServerError(f"seed {seed.port} did not take over its shard")
            time.sleep(0.1)
        self.cluster.wait_ok()

    def _all_see_primary(self, node: RedisServer) -> bool:
        for via in self.cluster.nodes:
            if via.running:
                info = next(i for i in self.cluster.topology(via=via) if i.port == node.port)
                if not info.primary:
                    return False
        return True

    # -- shards ----------------------------------------------------------------------------

    def _add_shards(self, count: int) -> None:
        seed = self._seed_address()
        added = []
        for _ in range(count):
            primary = self._start_node()
            self._redis_cli("--cluster", "add-node", self._address(primary), seed)
            added.append(primary)
        self._wait_joined()
        self._redis_cli("--cluster", "rebalance", seed, "--cluster-use-empty-masters")
        self.cluster.shards += count
        for primary in added:
            for _ in range(self.cluster.replicas):
                self._add_replica(primary)

    def _remove_shards(self, count: int) -> None:
        primaries = [n for n in self.cluster.primaries() if n is not self.cluster.seed]
        leaving = primaries[-count:]
        ids = self._ids()
        weights = [f"{ids[node.port]}=0" for node in leaving]
        # Redis 7 turns a primary that loses its last slot into a replica of the node that
        # took it, and rebalance's next SETSLOT to it fails: keep emptied primaries primaries.
        for node in self.cluster.nodes:
            if node.running:
                node.cli("CONFIG", "SET", "cluster-allow-replica-migration", "no")
        self._redis_cli(
            "--cluster", "rebalance", self._seed_address(), "--cluster-weight", *weights
        )
        for primary in leaving:
            for replica in self.cluster.replicas_of(primary):
                self._del_node(replica)
            self._del_node(primary)
        self.cluster.shards -= count

    # -- replicas --------------------------------------------------------------------------

    def _set_replicas(self, replicas: int) -> None:
        # Views of the topology lag behind changes (gossip): check again until it is right.
        for _ in range(ATTEMPTS):
            log.info("%s: topology %s", self.cluster.workdir, self.cluster.topology())
            changed = False
            for primary in self.cluster.primaries():
                current = self.cluster.replicas_of(primary)
                for replica in [r for r in current if r is not self.cluster.seed][replicas:]:
                    self._del_node(replica)
                    changed = True
                for _ in range(replicas - len(current)):
                    self._add_replica(primary)
                    changed = True
            if not changed:
                break
            self.cluster.wait_ok()
        self.cluster.replicas = replicas

    def _add_replica(self, primary: RedisServer) -> None:
        replica = self._start_node()
        primary_id = self._ids()[primary.port]
        self._redis_cli(
            "--cluster",
            "add-node",
            self._address(replica),
            self._seed_address(),
            *("--cluster-slave", "--cluster-master-id", primary_id),
        )
        self._wait_joined()

    # -- nodes -----------------------------------------------------------------------------

    def _start_node(self) -> RedisServer:
        seed = self.cluster.seed
        node = RedisServer(
            self.cluster.workdir / f"node-{self._made}",
            host=self.cluster.host,
            port=cluster_ports(self.cluster.host, 1)[0],
            password=self.cluster.password,
            tls=self.cluster.tls,
            config=seed.config,  # the cluster's own (cluster-enabled, TLS bus, configs)
        )
        self._made += 1
        log.info("%s: adding node %d", self.cluster.workdir, node.port)
        node.start()
        self.cluster.nodes.append(node)
        return node

    def _del_node(self, node: RedisServer) -> None:
        """Forget ``node`` everywhere; redis-cli shuts it down, ``stop`` reaps it."""
        node_id = self._ids()[node.port]
        log.info("%s: removing node %d", self.cluster.workdir, node.port)
        self._redis_cli("--cluster", "del-node", self._seed_address(), node_id)
        node.stop()
        self.cluster.nodes.remove(node)

    def _wait_joined(self) -> None:
        """Until every node knows every other (rebalance refuses nodes that disagree)."""
        running = [n for n in self.cluster.nodes if n.running]
        deadline = time.monotonic() + JOIN_SECONDS
        while not all(len(self.cluster.topology(via=n)) == len(running) for n in running):
            if time.monotonic() > deadline:
                raise RedisServerError(f"{self.cluster.workdir}: new nodes did not join")
            time.sleep(0.1)
        self.cluster.wait_ok()

    def _ids(self) -> dict[int, str]:
        return {info.port: info.node_id for info in self.cluster.topology()}

    def _address(self, node: RedisServer) -> str:
        return f"{self.cluster.host}:{node.port}"

    def _seed_address(self) -> str:
        return self._address(self.cluster.seed)

    def _redis_cli(self, *args: str) -> str:
        command = ["redis-cli", "--no-auth-warning"]
        if self.cluster.password:
            command += ["-a", self.cluster.password]
        if self.cluster.tls:
            command += ["--tls", "--cacert", str(self.cluster.tls.ca_path)]
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:  # redis-cli says why on stdout (its last lines)
            said = (done.stdout.replace("#", "").strip().splitlines() or [done.stderr])[-3:]
            raise RedisServerError(f"redis-cli {' '.join(args[:2])}: {' / '.join(said)}")
        return done.stdout
