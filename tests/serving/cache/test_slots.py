"""Key slots and the cluster's own replies, parsed: checked against a real cluster's answers."""

from __future__ import annotations

import asyncio
import random

from memoserve_dev.redis_cluster import RedisCluster
from memoserve_serving.cache.cluster_map import (
    Redirect,
    parse_redirect,
    parse_shards,
    parse_slots,
)
from memoserve_serving.cache.slots import hash_tag, key_slot
from tests.serving.cache.conftest import ClientFactory

EDGE_CASES = [
    b"",
    b"a",
    b"123456789",
    b"{}",
    b"{}a",
    b"a{}",
    b"{{a}}",
    b"{a}}",
    b"{{}}",
    b"{}{a}",
    b"a{b}c{d}",
    b"{",
    b"}",
    b"}{a}",
    b"a{b",
    b"{user1000}.following",
    b"foo{}{bar}",
    b"foo{{bar}}zap",
    b"foo{bar}{zap}",
    b"memoserve:v3:ml/iris:0123456789abcdef:{00ff}",
    b"lock:memoserve:v3:ml/iris:0123456789abcdef:{00ff}",
    "ключ{тег}".encode(),
    bytes(range(256)),
]


def test_tags_as_redis_reads_them() -> None:
    assert hash_tag(b"{user1000}.following") == b"user1000"
    assert hash_tag(b"{}a") == b"{}a"  # an empty tag: the whole key
    assert hash_tag(b"{{a}}") == b"{a"  # from the first "{" to the first "}" after it
    assert hash_tag(b"a{b") == b"a{b"
    assert hash_tag(b"foo{}{bar}") == b"foo{}{bar}"  # the first "{" has an empty tag


async def test_slots_are_the_clusters_own(
    redis_cluster: RedisCluster, make_client: ClientFactory
) -> None:
    generator = random.Random(21)
    keys = list(EDGE_CASES)
    for _ in range(300):
        size = generator.randrange(0, 12)
        keys.append(bytes(generator.choice(b"ab{}:xyz019") for _ in range(size)))
    keys += [b"memoserve:v3:ns:%016x:{%040x}" % (i, generator.getrandbits(160)) for i in range(50)]
    client = make_client(redis_cluster.url)
    theirs = await asyncio.gather(*(client.execute(b"CLUSTER", b"KEYSLOT", key) for key in keys))
    assert [key_slot(key) for key in keys] == theirs
    assert len(set(theirs)) > 100  # the sample covers many slots, not a few


def test_redirects_parsed() -> None:
    assert parse_redirect("MOVED 3999 10.0.0.7:6380", "seed") == Redirect(
        False, 3999, ("10.0.0.7", 6380)
    )
    assert parse_redirect("ASK 12 :7001", "10.0.0.1") == Redirect(True, 12, ("10.0.0.1", 7001))
    assert parse_redirect("MOVED 1 ::1:7001", "x") == Redirect(False, 1, ("::1", 7001))
    assert parse_redirect("ERR MOVED 1 a:1", "x") is None
    assert parse_redirect("OOM command not allowed", "x") is None
    assert parse_redirect("MOVED x a:1", "x") is None


async def test_the_maps_of_shards_and_slots_agree_with_the_cluster(
    redis_cluster: RedisCluster, make_client: ClientFactory
) -> None:
    client = make_client(redis_cluster.url)
    by_shards = parse_shards(await client.execute(b"CLUSTER", b"SHARDS"), "x", tls=False)
    by_slots = parse_slots(await client.execute(b"CLUSTER", b"SLOTS"), "x")
    topology = redis_cluster.topology()
    ports = {info.port: info for info in topology}
    expected = {
        info.port: sorted(info.slots) for info in topology if info.primary and not info.failed
    }
    for shards in (by_shards, by_slots):
        served: dict[int, list[tuple[int, int]]] = {}
        for shard in shards:
            assert shard.primary[0] == "127.0.0.1"
            served.setdefault(shard.primary[1], []).extend(shard.ranges)
            primary_id = ports[shard.primary[1]].node_id
            assert {ports[port].primary_id for _, port in shard.replicas} == {primary_id}
        assert {port: sorted(ranges) for port, ranges in served.items()} == expected
    assert sum(len(shard.replicas) for shard in by_shards) == 3


def _node(port: int, role: bytes, health: bytes, **extra: object) -> list[object]:
    ip = extra.get("ip", b"10.0.0.1")
    fields: list[object] = [b"id", b"x", b"port", port, b"ip", ip, b"endpoint"]
    fields += [extra.get("endpoint", ip), b"role", role, b"health", health]
    for name, value in extra.items():
        if name not in ("endpoint", "ip"):
            fields += [name.replace("_", "-").encode(), value]
    return fields


def test_shards_prefer_the_online_primary_and_skip_sick_replicas() -> None:
    reply = [
        [b"slots", [0, 99, 200, 299], b"nodes", [
            _node(7000, b"master", b"failed"),  # failed over, still listed
            _node(7001, b"master", b"online"),
            _node(7002, b"replica", b"loading"),
            _node(7003, b"replica", b"online", ip=b""),  # no address announced
        ]],
        [b"slots", [100, 199], b"nodes", [_node(7004, b"master", b"failed")]],
        [b"slots", [], b"nodes", [_node(7005, b"master", b"online")]],  # no slots: left out
    ]  # fmt: skip
    shards = parse_shards(reply, "seed-host", tls=False)
    assert [(s.ranges, s.primary, s.replicas, s.primary_online) for s in shards] == [
        (((0, 99), (200, 299)), ("10.0.0.1", 7001), (("seed-host", 7003),), True),
        (((100, 199),), ("10.0.0.1", 7004), (), False),
    ]


def test_shards_over_tls_use_the_tls_port() -> None:
    reply = [[b"slots", [0, 16383], b"nodes", [_node(0, b"master", b"online", tls_port=7443)]]]
    assert parse_shards(reply, "seed", tls=True)[0].primary == ("10.0.0.1", 7443)
