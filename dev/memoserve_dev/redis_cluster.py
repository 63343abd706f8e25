"""A real local Redis Cluster: ``shards`` primaries with ``replicas`` replicas each, made of
``redis-server`` processes (cluster mode) joined by ``redis-cli --cluster create``.

The stand-in for Memorystore for Valkey / Redis Cluster in ``memoserve run``, the Memorystore
emulator and the tests. AUTH (``password``: every node's ``requirepass`` and ``masterauth``) and
TLS (``tls``: TLS-only ports, the cluster bus too) as :class:`RedisServer` does them.
Hooks for failures: ``kill(node)``, ``wait_failover(node)``, ``reshard``; ``cli`` runs a
command against one node. Methods block: call them from a thread in async code.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from memoserve_dev.ports import accepts, free_port
from memoserve_dev.redis_server import RedisServer, RedisServerError
from memoserve_dev.tls import TlsFiles

SLOTS = 16384
READY_SECONDS = 30.0
BUS_PORT_OFFSET = 10000  # a node's cluster bus listens on its port + 10000


@dataclass(frozen=True)
class NodeInfo:
    """One line of ``CLUSTER NODES``, the parts the tests and the emulator read."""

    node_id: str
    port: int
    primary: bool
    primary_id: str | None  # a replica's primary
    failed: bool
    slots: tuple[tuple[int, int], ...]  # inclusive ranges served (primaries)


class RedisCluster:
    def __init__(
        self,
        workdir: Path,
        *,
        shards: int = 3,
        replicas: int = 1,
        host: str = "127.0.0.1",
        password: str | None = None,
        tls: TlsFiles | None = None,
        config: Mapping[str, str] = {},
        node_timeout_ms: int = 1000,
        ports: Sequence[int] | None = None,
        binary: str | None = None,
    ) -> None:
        """``binary``: the server to run (default redis-server on PATH; a valkey-server works
        the same, joined by the same redis-cli)."""
        if shards < 1 or replicas < 0:
            raise ValueError("need shards >= 1 and replicas >= 0")
        count = shards * (1 + replicas)
        if ports is not None and len(ports) != count:
            raise ValueError(f"{count} nodes need {count} ports, got {len(ports)}")
        self.workdir, self.host = workdir, host
        self.shards, self.replicas = shards, replicas
        self.password, self.tls = password, tls
        cluster_config = {
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(node_timeout_ms),
            # Serve the slots that are up while another shard is down (Memorystore does too).
            "cluster-require-full-coverage": "no",
            "cluster-allow-reads-when-down": "no",
            # A replica may always take over (a cache loses nothing that matters by it).
            "cluster-replica-validity-factor": "0",
            **({"masterauth": password} if password else {}),
            **({"tls-cluster": "yes", "tls-replication": "yes"} if tls else {}),
            **config,
        }
        if ports is None:
            ports = _cluster_ports(host, count)
        self.nodes = [
            RedisServer(
                workdir / f"node-{index}",
                host=host,
                port=ports[index],
                password=password,
                tls=tls,
                config=cluster_config,
                binary=binary,
            )
            for index in range(count)
        ]

    @property
    def seed(self) -> RedisServer:
        """The node a client is given (any node would do: clients learn the rest)."""
        return self.nodes[0]

    @property
    def url(self) -> str:
        return self.seed.url

    def start(self) -> None:
        """Start every node, join them (first start only) and wait for cluster_state:ok."""
        fresh = not (self.nodes[0].workdir / "nodes.conf").exists()
        try:
            for node in self.nodes:
                node.start()
            if fresh:
                self._create()
            self.wait_ok()
            if fresh and self.replicas:
                self._replicate_once()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        addresses = [f"{self.host}:{node.port}" for node in self.nodes]
        args = ["--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas)]
        if self.shards == 1 and self.replicas == 0:
            # redis-cli refuses fewer than 3 primaries: give the one node every slot directly.
            self.cli(self.seed, "CLUSTER", "ADDSLOTSRANGE", "0", str(SLOTS - 1))
            return
        if self.shards < 3:
            self._create_small()
            return
        self._redis_cli(*args, "--cluster-yes")

    def _create_small(self) -> None:
        """1-2 shards (redis-cli --cluster create wants 3 primaries): meet, assign, replicate."""
        primaries = self.nodes[: self.shards]
        for node in self.nodes[1:]:
            self.cli(node, "CLUSTER", "MEET", self.host, str(primaries[0].port))
        step = SLOTS // self.shards
        for index, node in enumerate(primaries):
            last = SLOTS - 1 if index == self.shards - 1 else (index + 1) * step - 1
            self.cli(node, "CLUSTER", "ADDSLOTSRANGE", str(index * step), str(last))
        self._wait(lambda: len(self.topology()) == len(self.nodes), "nodes to meet")
        ids = {info.port: info.node_id for info in self.topology()}
        replicas = self.nodes[self.shards :]
        for index, node in enumerate(replicas):
            primary = primaries[index % self.shards]
            self.cli(node, "CLUSTER", "REPLICATE", ids[primary.port])

    def _replicate_once(self) -> None:
        """One write per shard, replicated: a replica whose replication offset is still 0
        counts as "loading" (CLUSTER SHARDS) and is left out of CLUSTER SLOTS, so clients
        would not read from it yet."""
        for node in self.primaries():
            self.cli(node, "FLUSHALL")  # a write without a key: any primary takes it

        def replicated() -> bool:  # as every node sees it (offsets travel by gossip)
            return not any(
                "loading" in self.cli(node, "CLUSTER", "SHARDS").splitlines()
                for node in self.nodes
                if node.running
            )

        self._wait(replicated, "replicas with data")

    def wait_ok(self, timeout: float = READY_SECONDS) -> None:
        """Until every running node says cluster_state:ok and knows all slots, and every
        running replica's link to its primary is up."""

        def ok() -> bool:
            for node in self.nodes:
                if not node.running:
                    continue
                info = self.cli(node, "CLUSTER", "INFO")
                if "cluster_state:ok" not in info or f"cluster_slots_ok:{SLOTS}" not in info:
                    return False
                replication = self.cli(node, "INFO", "replication")
                if "role:slave" in replication and "master_link_status:up" not in replication:
                    return False
            return True

        self._wait(ok, "cluster_state:ok", timeout)

    def _wait(self, done: object, what: str, timeout: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if done():  # type: ignore[operator]
                    return
            except subprocess.CalledProcessError:
                pass
            if time.monotonic() > deadline:
                raise RedisServerError(f"Redis cluster in {self.workdir}: no {what} in {timeout} s")
            time.sleep(0.1)

    def topology(self, via: RedisServer | None = None) -> list[NodeInfo]:
        """``CLUSTER NODES`` as seen by ``via`` (default: the first running node)."""
        node = via or next(n for n in self.nodes if n.running)
        found = []
        for line in self.cli(node, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            address, flags = fields[1], fields[2].split(",")
            port = int(address.split("@")[0].rsplit(":", 1)[1])
            ranges = []
            for part in fields[8:]:
                if part.startswith("["):  # a slot being migrated or imported
                    continue
                first, _, last = part.partition("-")
                ranges.append((int(first), int(last or first)))
            found.append(
                NodeInfo(
                    node_id=fields[0],
                    port=port,
                    primary="master" in flags,
                    primary_id=None if fields[3] == "-" else fields[3],
                    failed="fail" in flags or "fail?" in flags,
                    slots=tuple(ranges),
                )
            )
        return found

    def primaries(self) -> list[RedisServer]:
        ports = {info.port for info in self.topology() if info.primary and not info.failed}
        return [node for node in self.nodes if node.port in ports and node.running]

    def node_for_port(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        infos = self.topology()
        primary_id = next(info.node_id for info in infos if info.port == primary.port)
        ports = {info.port for info in infos if info.primary_id == primary_id}
        return [node for node in self.nodes if node.port in ports]

    def kill_primary(self, primary: RedisServer, timeout: float = READY_SECONDS) -> RedisServer:
        """SIGKILL a shard's primary (a crash) and wait until one of its replicas has taken
        over its slots and the cluster is ok again; returns the new primary."""
        candidates = self.replicas_of(primary)
        if not candidates:
            raise ValueError(f"node {primary.port} has no replica to fail over to")
        primary.kill()
        promoted: list[RedisServer] = []

        def taken_over() -> bool:
            for node in candidates:
                if node.running and self.cli(node, "ROLE").splitlines()[0] == "master":
                    promoted.append(node)
                    return True
            return False

        self._wait(taken_over, f"failover of {primary.port}", timeout)
        self.wait_ok(timeout)
        return promoted[0]

    def reshard(self, source: RedisServer, target: RedisServer, slots: int) -> None:
        """Move ``slots`` slots (with their keys) from ``source`` to ``target``, as
        ``redis-cli --cluster reshard`` does: clients see MOVED and ASK meanwhile."""
        ids = {info.port: info.node_id for info in self.topology()}
        self._redis_cli(
            "--cluster",
            "reshard",
            f"{self.host}:{self.seed.port}",
            *("--cluster-from", ids[source.port], "--cluster-to", ids[target.port]),
            *("--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "10"),
        )

    def start_migration(self, slot: int, source: RedisServer, target: RedisServer) -> None:
        """The first step of moving one slot by hand: ``target`` imports it, ``source`` is
        migrating it. Keys moved since (:meth:`migrate_keys`) are answered with ASK."""
        ids = {info.port: info.node_id for info in self.topology()}
        self.cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[source.port])
        self.cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[target.port])

    def migrate_keys(self, slot: int, source: RedisServer, target: RedisServer) -> int:
        """Move every key of ``slot`` from ``source`` to ``target``; how many there were."""
        keys = self.cli(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "1000").split()
        if keys:
            auth = ["AUTH", self.password] if self.password else []
            self.cli(source, "MIGRATE", self.host, str(target.port), "", "0", "5000",
                     *auth, "KEYS", *keys)  # fmt: skip
        return len(keys)

    def finish_migration(self, slot: int, target: RedisServer) -> None:
        """The slot is ``target``'s now, on every primary (clients get MOVED)."""
        target_id = next(info.node_id for info in self.topology() if info.port == target.port)
        for node in [target, *(n for n in self.primaries() if n is not target)]:
            self.cli(node, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)

    def add_shard(self, primary: RedisServer) -> None:
        """Join a started, empty cluster-mode node as a new primary (no slots yet)."""
        self._redis_cli(
            "--cluster", "add-node", f"{self.host}:{primary.port}", f"{self.host}:{self.seed.port}"
        )

    def _redis_cli(self, *args: str) -> str:
        command = ["redis-cli", "--no-auth-warning", *self._auth_args(), *args]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
        return done.stdout

    def _auth_args(self) -> list[str]:
        args = []
        if self.password:
            args += ["-a", self.password]
        if self.tls:
            args += ["--tls", "--cacert", str(self.tls.ca_path)]
        return args

    def cli(self, node: RedisServer, *command: str) -> str:
        return node.cli(*command)

    def key_cli(self, *command: str) -> str:
        """Run a command about keys on the node that holds them (``redis-cli -c`` follows
        MOVED and ASK from the first running node)."""
        node = next(n for n in self.nodes if n.running)
        args = ["redis-cli", "-c", "-h", self.host, "-p", str(node.port), "--no-auth-warning"]
        done = subprocess.run(
            [*args, *self._auth_args(), *command], check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def on_primaries(self, *command: str) -> list[str]:
        """Run a command on every running primary (FLUSHALL, CONFIG RESETSTAT...)."""
        return [node.cli(*command) for node in self.primaries()]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _cluster_ports(host: str, count: int) -> list[int]:
    """``count`` free ports whose bus ports (+10000) exist and are free too: redis-server
    refuses a cluster port above 55535."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port + BUS_PORT_OFFSET > 65535 or port in ports or accepts(host, port + BUS_PORT_OFFSET):
            continue
        ports.append(port)
    return ports
