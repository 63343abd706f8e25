"""The operator's reading of the pods' cache counts (status hitRatio) from an IAM-auth cache,
standalone and sharded, and what the status says when the cache refuses the AUTH.

The token source is a stand-in (``Tokens``): a real one (``iam_token.GoogleTokens``) mints an
access token of the pods' Google service account by impersonation, which needs Google. What
Memorystore does with the token (accept it when the account holds roles/...dbConnectionUser,
refuse it otherwise) is played by a real redis-server's ACL: it accepts one token, that of the
account "with the role", and refuses the others with WRONGPASS, as Memorystore does. So the
operator's reaction to a refused AUTH is tested for real; the minting of tokens is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from memoserve_contract import cache_stats
from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.status import CacheStatus, ConditionType
from memoserve_dev.redis_cluster import RedisCluster as LocalCluster
from memoserve_dev.redis_server import RedisServer
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.cache.stats import AUTH_REFUSED, CacheStatsReader, with_refusal
from memoserve_operator.verdict import Verdict

NOW = 1_000_000 * 60 + 10.0
GRANTED = "pods@proj-1.iam.gserviceaccount.com"  # holds the role: its token is accepted
DENIED = "other@proj-1.iam.gserviceaccount.com"
TOKEN = "token-of-an-account-with-the-role"


class Tokens:
    """Stand-in for GoogleTokens (see the module's docstring): one token per account."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    async def token(self, account: str | None) -> str:
        self.asked.append(account)
        return TOKEN if account == GRANTED else f"token-of-{account}"


@pytest.fixture
def iam_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone IAM-auth cache (Valkey with mode CLUSTER_DISABLED)."""
    server = RedisServer(tmp_path / "redis", password=TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def iam_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A sharded IAM-auth cache (Redis Cluster, Valkey mode CLUSTER): three primaries."""
    with LocalCluster(tmp_path / "cluster", shards=3, replicas=0, password=TOKEN) as cluster:
        yield cluster


def _endpoint(port: int, *, cluster: bool, engine: str) -> RedisEndpoint:
    return RedisEndpoint(
        "127.0.0.1", port, engine=engine, auth="iam", cluster=cluster,  # type: ignore[arg-type]
        shards=3 if cluster else 1,
    )  # fmt: skip


async def test_a_standalone_iam_cache_is_read_with_the_pods_token(iam_redis: RedisServer) -> None:
    minute = cache_stats.bucket(NOW)
    key = cache_stats.stats_key("ml/iris", minute)
    iam_redis.cli("HSET", key, "hits", "3", "lookups", "4", "digest", "sha256:abc")
    tokens = Tokens()
    reader = CacheStatsReader(interval=0, clock=lambda: NOW, tokens=tokens)
    endpoint = _endpoint(iam_redis.port, cluster=False, engine="valkey")
    assert await reader.read("ml/iris", endpoint, account=DENIED) is None
    refused = reader.refused("ml/iris")
    assert refused is not None
    assert DENIED in refused
    assert "roles/memorystore.dbConnectionUser" in refused
    # The role granted (here: the account that has it): the next read works and clears it.
    assert await reader.read("ml/iris", endpoint, account=GRANTED) == CacheStats(3, 4, "sha256:abc")
    assert reader.refused("ml/iris") is None
    assert tokens.asked == [DENIED, GRANTED]


async def test_a_sharded_iam_cache_is_read_from_the_node_of_its_slot(
    iam_cluster: LocalCluster,
) -> None:
    writer = RedisCluster(host="127.0.0.1", port=iam_cluster.seed.port, password=TOKEN)
    keys = cache_stats.window_keys("ml/iris", NOW)
    try:
        for n, key in enumerate(keys):
            await writer.hset(key, mapping={"hits": 1, "lookups": 2, "digest": f"d{n}"})
        slots = {writer.keyslot(key) for key in keys}
    finally:
        await writer.aclose()
    # A service's window shares one hash tag: one slot, so one node answers the whole read.
    assert len(slots) == 1
    reader = CacheStatsReader(interval=0, clock=lambda: NOW, tokens=Tokens())
    endpoint = _endpoint(iam_cluster.seed.port, cluster=True, engine="redis-cluster")
    read = await reader.read("ml/iris", endpoint, account=GRANTED)
    assert read == CacheStats(len(keys), 2 * len(keys), "d0")
    denied = CacheStatsReader(interval=0, clock=lambda: NOW, tokens=Tokens())
    assert await denied.read("ml/iris", endpoint, account=DENIED) is None
    refused = denied.refused("ml/iris")
    assert refused is not None
    assert "roles/redis.dbConnectionUser" in refused
    assert DENIED in refused


def test_a_refused_auth_turns_cache_ready_false_and_keeps_the_endpoint() -> None:
    endpoint = _endpoint(6379, cluster=True, engine="valkey")
    ready = CacheOutcome(
        Verdict.true(ConditionType.CACHE_READY, "ValkeyReady", "fine"),
        CacheStatus(source="valkey", state="ACTIVE"),
        endpoint,
    )
    assert with_refusal(ready, None) is ready
    refused = with_refusal(ready, "needs roles/memorystore.dbConnectionUser")
    assert (refused.verdict.ok, refused.verdict.reason) == (False, AUTH_REFUSED)
    assert refused.status.message == "needs roles/memorystore.dbConnectionUser"
    assert refused.endpoint == endpoint
    assert not refused.hold
    waiting = CacheOutcome(
        Verdict.false(ConditionType.CACHE_READY, "CacheCreating"), CacheStatus(), hold=True
    )
    assert with_refusal(waiting, "refused") is waiting  # the cache step's own word first
