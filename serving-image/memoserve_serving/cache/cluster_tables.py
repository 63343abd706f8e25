"""A Redis Cluster's slot map, read from a node and laid out as one table per use.

:func:`read_shards` asks a node (``CLUSTER SHARDS``, else ``CLUSTER SLOTS``) and says None when
the node is no cluster node at all; :func:`slot_tables` turns the shards into two lists indexed
by slot, so routing a key costs a list lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from memoserve_serving.cache.cluster_map import Address, Shard, parse_shards, parse_slots
from memoserve_serving.cache.resp import RedisClient
from memoserve_serving.cache.resp_connection import RedisReplyError
from memoserve_serving.cache.slots import SLOT_COUNT

Node = TypeVar("Node")


async def read_shards(client: RedisClient) -> list[Shard] | None:
    """The shards ``client``'s node knows, or None when it is no cluster node; RedisError when
    it cannot say now (down, LOADING, NOAUTH...: ask another node)."""
    host = client.config.host
    try:
        reply = await client.execute(b"CLUSTER", b"SHARDS")
    except RedisReplyError as exc:
        if "disabled" in str(exc):  # "This instance has cluster support disabled"
            return None
        if "unknown" not in str(exc).lower():
            raise
    else:
        return parse_shards(reply, host, tls=client.config.tls)
    try:  # a server older than CLUSTER SHARDS (Redis < 7)
        return parse_slots(await client.execute(b"CLUSTER", b"SLOTS"), host)
    except RedisReplyError as exc:
        if "unknown" in str(exc).lower() or "disabled" in str(exc):
            return None  # no CLUSTER command at all: one server
        raise


def slot_tables(
    shards: list[Shard], node: Callable[[Address], Node], replica_pick: int | None
) -> tuple[list[Node], list[Node]]:
    """(primary of each slot, node to read each slot from): the reader is the primary, or with
    ``replica_pick`` one of the shard's healthy replicas (the same one while the shard's
    replicas stay the same). Slots that no shard serves go to the first shard's primary (its
    MOVED or CLUSTERDOWN reply says more). With no replica reads both are the same list."""
    fallback = node(shards[0].primary)
    primaries = [fallback] * SLOT_COUNT
    readers = primaries if replica_pick is None else [fallback] * SLOT_COUNT
    for shard in shards:
        primary = node(shard.primary)
        reader = primary
        if replica_pick is not None and shard.replicas:
            reader = node(shard.replicas[replica_pick % len(shard.replicas)])
        for first, last in shard.ranges:
            count = last - first + 1
            primaries[first : last + 1] = [primary] * count
            if readers is not primaries:
                readers[first : last + 1] = [reader] * count
    return primaries, readers
