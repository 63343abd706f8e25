"""Which Redis node a cache key's commands go to: the one Redis, or a Redis Cluster's nodes.

The pods are given one address (``--redis-url``): a lone primary, or any node of a cluster
(Memorystore for Valkey / Redis Cluster gives a discovery endpoint). Which it is, the server
says on the first connect (:meth:`RedisNodes.connect` asks ``CLUSTER SHARDS``), or the first
``MOVED`` reply does. Until then every command goes to the given address, as on one primary.

On a cluster:

* The slot map comes from the cluster (``CLUSTER SHARDS``, ``CLUSTER SLOTS`` on old servers);
  a key's node is ``primaries[key_slot(key)]``, a list lookup after a C CRC16.
* One auto-pipelined :class:`RedisClient` per node, each with its own circuit breaker (a
  :class:`GuardedRedis`), configured as the seed with only host and port replaced, so TLS and
  credentials are those of the seed. A dead shard opens only its breaker: its slots are served
  uncached (fail-open) while the other shards keep hitting.
* ``MOVED``: the slot is remapped at once, the command re-sent there, and the whole map is
  re-read soon (rate limited). ``ASK`` (a slot being migrated): ``ASKING`` and the command are
  sent back to back on the target's connection, the map is left as it is.
* A node that times out or drops the connection schedules a map refresh from any node that
  answers; while a primary in the map is down (its breaker not closed, or the node that gave
  the map has it as failed) the map is re-read every half second, so the replica that took
  over is found without a restart, even when the first node asked had not heard of it yet.

Reads from replicas (``redis_read_replicas``, off by default): hit lookups (the GET before any
lock) go to one replica of the key's shard (``READONLY`` on that connection), the lock, the
re-check under it and the stores to the primary. The cost: replication is asynchronous, so a
lookup right after a store can miss on the replica. Such a miss then takes the lock on the
primary, whose re-check finds the answer (a remote single-flight join): one more round trip,
no second computation. A replica whose breaker is open is skipped (reads go to the primary).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from memoserve_serving.cache.breaker import BreakerState, CircuitBreaker
from memoserve_serving.cache.cluster_map import Address, Redirect, Shard, parse_redirect
from memoserve_serving.cache.cluster_tables import read_shards, slot_tables
from memoserve_serving.cache.guard import GuardedRedis
from memoserve_serving.cache.redis_config import RedisConfig
from memoserve_serving.cache.resp import RedisClient
from memoserve_serving.cache.resp_connection import Arg, RedisError, RedisReplyError
from memoserve_serving.cache.slots import SLOT_COUNT, key_slot
from memoserve_serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

# One MOVED after a reshard, then possibly an ASK while the slot is still migrating.
_MAX_REDIRECTS = 3
_REFRESH_MIN_INTERVAL = 0.2  # seconds between two reads of the slot map
_REFRESH_WHILE_DOWN = 0.5  # seconds between reads while a primary in the map is down


class Topology(enum.Enum):
    UNKNOWN = "unknown"  # not asked yet (or nobody answered): everything to the seed
    STANDALONE = "standalone"
    CLUSTER = "cluster"


# Module constants for the hot path: an enum member looked up on its class costs ~10 attribute
# reads (EnumType.__getattr__ on Python 3.11).
_CLUSTER = Topology.CLUSTER
_STANDALONE = Topology.STANDALONE


class RedisNodes:
    def __init__(
        self,
        config: RedisConfig,
        metrics: ServingMetrics,
        breaker: Callable[[str], CircuitBreaker],
        *,
        read_replicas: bool = False,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._new_breaker = breaker  # address -> a fresh breaker for that node
        self._read_replicas = read_replicas
        self._replica_pick = random.randrange(1 << 16)  # spreads pods over a shard's replicas
        self._nodes: dict[Address, GuardedRedis] = {}
        self.seed = self._node((config.host, config.port))
        self.topology = Topology.UNKNOWN
        self._primaries: list[GuardedRedis] = [self.seed] * SLOT_COUNT
        self._readers = self._primaries  # the same list unless reading from replicas
        self._refreshing: asyncio.Task[None] | None = None
        self._last_refresh = -math.inf
        self._map_has_failed_primary = False
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- routing (the hot path) -------------------------------------------------------------

    @property
    def standalone(self) -> bool:
        """Known to be one Redis (not a cluster): no redirects to follow."""
        return self.topology is _STANDALONE

    def primary(self, key: bytes) -> GuardedRedis:
        """The node for ``key``'s writes, locks and consistent reads."""
        if self.topology is not _CLUSTER:
            return self.seed
        return self._primaries[key_slot(key)]

    def reader(self, key: bytes) -> GuardedRedis:
        """The node for ``key``'s lookup: its primary, or a replica (see the module doc)."""
        if self.topology is not _CLUSTER:
            return self.seed
        slot = key_slot(key)
        node = self._readers[slot]
        if self._readers is self._primaries or node.breaker.ready():
            return node
        return self._primaries[slot]

    def send(self, node: GuardedRedis, *args: Arg) -> asyncio.Future[Any]:
        """Send ``args`` to ``node`` now (call order = send order); the reply, after following
        redirects unless this is a lone Redis."""
        first = node.client.execute(*args)
        if self.topology is _STANDALONE:
            return first
        return asyncio.ensure_future(self._reply(node, first, args))

    def command(self, key: bytes, *args: Arg) -> asyncio.Future[Any]:
        """``args`` (about ``key``) to ``key``'s primary, outside any breaker (the stats)."""
        return self.send(self.primary(key), *args)

    async def _reply(
        self, node: GuardedRedis, first: asyncio.Future[Any], args: tuple[Arg, ...]
    ) -> Any:
        try:
            return await first
        except RedisReplyError as exc:
            return await self.redirected(exc, node, args)

    async def redirected(self, exc: RedisError, node: GuardedRedis, args: Sequence[Arg]) -> Any:
        """The reply to ``args`` after following the MOVED or ASK that ``node`` answered;
        raises ``exc`` if it is no redirect."""
        redirect = self._redirect(exc, node)
        if redirect is None:
            raise exc
        for _ in range(_MAX_REDIRECTS):
            target = self._node(redirect.address)
            client = target.client
            if redirect.ask:
                self._metrics.cache_redirect("ask")
                if not client.connected:
                    await client.connect()
                # Back to back on one connection: ASKING is good for the next command only.
                client.send_nowait(b"ASKING")
            else:
                self._metrics.cache_redirect("moved")
                self._moved(redirect.slot, target)
            try:
                return await client.execute(*args)
            except RedisReplyError as again:
                redirect = self._redirect(again, target)
                if redirect is None:
                    raise
        raise RedisReplyError(f"more than {_MAX_REDIRECTS} redirects for slot {redirect.slot}")

    def _redirect(self, exc: RedisError, node: GuardedRedis) -> Redirect | None:
        if not isinstance(exc, RedisReplyError) or self.topology is Topology.STANDALONE:
            return None
        return parse_redirect(str(exc), node.client.config.host)

    def _moved(self, slot: int, target: GuardedRedis) -> None:
        if self.topology is not Topology.CLUSTER:
            log.info("Redis at %s is a cluster (MOVED reply)", self._config.address)
            self.topology = Topology.CLUSTER
        self._primaries[slot] = target
        if self._readers is not self._primaries:
            self._readers[slot] = target
        self.schedule_refresh()

    # -- the slot map -----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect to the seed and learn what it is; raises RedisError if it is unreachable
        (and keeps trying in the background, see :meth:`schedule_refresh`)."""
        try:
            await self.seed.client.connect()
        except RedisError:
            self.schedule_refresh()
            raise
        await self.refresh()

    def schedule_refresh(self) -> None:
        """Re-read the slot map soon (at most every _REFRESH_MIN_INTERVAL), and again every
        _REFRESH_WHILE_DOWN while nobody has answered what Redis is, or while a primary in the
        map is down; a no-op if that is already under way."""
        if self._closed or self.topology is Topology.STANDALONE or self._refreshing is not None:
            return
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh_soon())

    async def _refresh_soon(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(max(0.0, self._last_refresh + _REFRESH_MIN_INTERVAL - loop.time()))
            await self.refresh()
            while self.topology is Topology.UNKNOWN or self._a_primary_is_down():
                await asyncio.sleep(_REFRESH_WHILE_DOWN)
                await self.refresh()
        finally:
            self._refreshing = None

    def _a_primary_is_down(self) -> bool:
        if self.topology is not Topology.CLUSTER:
            return False
        if self._map_has_failed_primary:
            return True
        primaries = {id(node): node for node in self._primaries}.values()
        return any(node.breaker.state is not BreakerState.CLOSED for node in primaries)

    async def refresh(self) -> None:
        """Read the slot map from the first node that answers (or learn it is no cluster)."""
        self._last_refresh = asyncio.get_running_loop().time()
        for node in self._ask_order():
            try:
                shards = await read_shards(node.client)
            except RedisError as exc:
                log.debug("no slot map from %s: %s", node.client.config.address, exc)
                continue
            if shards is None:
                if self.topology is Topology.UNKNOWN:
                    self.topology = Topology.STANDALONE
                return
            if shards:
                self._apply(shards)
                return
        log.warning("no Redis node answered with a slot map; will try again")

    def _ask_order(self) -> list[GuardedRedis]:
        # Connected nodes whose breaker is closed first: they answer quickest.
        nodes = list(self._nodes.values())
        random.shuffle(nodes)
        nodes.sort(key=lambda node: (not node.client.connected, not node.breaker.ready()))
        return nodes

    def _apply(self, shards: list[Shard]) -> None:
        pick = self._replica_pick if self._read_replicas else None
        primaries, readers = slot_tables(shards, self._node, pick)
        if self.topology is not Topology.CLUSTER:
            log.info("Redis at %s is a cluster of %d shards", self._config.address, len(shards))
        self._primaries, self._readers = primaries, readers
        self._map_has_failed_primary = not all(shard.primary_online for shard in shards)
        self.topology = Topology.CLUSTER
        used = {id(node) for node in primaries} | {id(node) for node in readers}
        for address, node in list(self._nodes.items()):
            if id(node) not in used and node is not self.seed:
                del self._nodes[address]  # gone from the cluster (e.g. a failed primary)
                self._close_later(node)

    def _node(self, address: Address) -> GuardedRedis:
        node = self._nodes.get(address)
        if node is None:
            host, port = address
            config = dataclasses.replace(self._config, host=host, port=port)
            greeting: tuple[tuple[Arg, ...], ...] = ((b"READONLY",),) if self._read_replicas else ()
            node = self._nodes[address] = GuardedRedis(
                RedisClient(config, greeting=greeting),
                self._new_breaker(config.address),
                self._metrics,
                on_unreachable=self.schedule_refresh,
            )
        return node

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def nodes(self) -> list[GuardedRedis]:
        return list(self._nodes.values())

    async def barrier(self) -> None:
        """Wait for the replies to everything sent so far, on every connection."""
        pings = [node.client.ping() for node in self._nodes.values() if node.client.connected]
        await asyncio.gather(*pings, return_exceptions=True)

    def _close_later(self, node: GuardedRedis) -> None:
        task = asyncio.get_running_loop().create_task(node.client.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        self._closed = True
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        await asyncio.gather(
            *(node.client.close() for node in self._nodes.values()), *self._closing
        )
