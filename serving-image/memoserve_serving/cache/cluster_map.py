"""What a Redis Cluster says about itself, parsed: which node serves which slots, redirects.

Pure functions over replies (as hiredis returns them: bytes, ints and lists), so that they are
tested without a server. ``CLUSTER SHARDS`` (Redis 7+, Valkey) is preferred: it tells each
node's health, so a failed replica is never read from; ``CLUSTER SLOTS`` is the fallback for
servers without it. A node that announces no endpoint is reached at the host we asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Address = tuple[str, int]  # (host, port)


@dataclass(frozen=True)
class Shard:
    ranges: tuple[tuple[int, int], ...]  # inclusive slot ranges
    primary: Address
    replicas: tuple[Address, ...]  # the healthy ones only
    # False when the node we asked has the primary as failed: its slots are down, or that node
    # has not heard of the failover yet (gossip); either way the map is worth reading again.
    primary_online: bool = True


@dataclass(frozen=True)
class Redirect:
    """A ``MOVED`` (the slot lives elsewhere now) or ``ASK`` (this once, mid-migration) reply."""

    ask: bool
    slot: int
    address: Address


def parse_redirect(message: str, via_host: str) -> Redirect | None:
    """The redirect in an error reply's text (``MOVED 3999 10.0.0.7:6379``), None for any
    other error."""
    kind, _, rest = message.partition(" ")
    if kind not in ("MOVED", "ASK"):
        return None
    slot, _, target = rest.partition(" ")
    host, _, port = target.rpartition(":")
    if not slot.isdigit() or not port.isdigit():
        return None
    return Redirect(kind == "ASK", int(slot), (_host(host, via_host), int(port)))


def parse_shards(reply: Sequence[Any], via_host: str, *, tls: bool) -> list[Shard]:
    """``CLUSTER SHARDS``: every shard that serves slots, its primary and healthy replicas."""
    shards = []
    for raw_shard in reply:
        shard = _pairs(raw_shard)
        bounds = list(shard.get("slots") or ())
        ranges = tuple((int(a), int(b)) for a, b in zip(bounds[::2], bounds[1::2], strict=True))
        if not ranges:
            continue
        primary: Address | None = None
        primary_online = False
        replicas = []
        for raw_node in shard.get("nodes") or ():
            node = _pairs(raw_node)
            port = node.get("tls-port") if tls else None
            port = int(port or node.get("port") or 0)
            host = _text(node.get("endpoint")) or _text(node.get("ip"))
            if not port or host == "?":
                continue
            address = (_host(host, via_host), port)
            online = _text(node.get("health")) == "online"
            if _text(node.get("role")) == "master":
                # The old primary of a failed-over shard stays listed (failed) until it rejoins.
                if online or primary is None:
                    primary, primary_online = address, online
            elif online:
                replicas.append(address)
        if primary is not None:
            shards.append(Shard(ranges, primary, tuple(replicas), primary_online))
    return shards


def parse_slots(reply: Sequence[Any], via_host: str) -> list[Shard]:
    """``CLUSTER SLOTS``: [first, last, primary, replica...], a node being [host, port, ...]."""
    shards = []
    for entry in reply:
        first, last, primary, *replicas = entry
        shards.append(
            Shard(
                ((int(first), int(last)),),
                _node_address(primary, via_host),
                tuple(_node_address(node, via_host) for node in replicas),
            )
        )
    return shards


def _node_address(node: Sequence[Any], via_host: str) -> Address:
    return (_host(_text(node[0]), via_host), int(node[1]))


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    """A RESP2 map (a flat list key, value, key, value...) as a dict with str keys."""
    return {_text(key): value for key, value in zip(flat[::2], flat[1::2], strict=True)}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


def _host(host: str, via_host: str) -> str:
    # An empty host means "the host you reached me at" (no announced endpoint).
    return host or via_host
