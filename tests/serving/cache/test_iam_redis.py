"""IAM auth against real peers: redis-server whose ACL takes the current token, the local
metadata server behind the real google-auth, and a RESP peer answering like Memorystore's
overloaded IAM backend."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import hiredis
import pytest
import redis

from memoserve_dev.metadata_server import DEFAULT_EMAIL, MetadataServer
from memoserve_dev.redis_server import RedisServer
from memoserve_serving.cache.base import CacheResult
from memoserve_serving.cache.google_tokens import GoogleAccessTokens
from memoserve_serving.cache.iam import IamTokenSource
from memoserve_serving.cache.redis_config import RedisConfig
from memoserve_serving.cache.resp import RedisClient
from memoserve_serving.cache.resp_connection import RedisConnectionError
from memoserve_serving.cache.store import RedisAnswerCache, open_answer_cache
from memoserve_serving.metrics import ServingMetrics
from tests.serving.cache.conftest import Counter
from tests.support.serving import serving_settings

FIRST = "ya29.first-token"  # what the metadata server hands out unless told otherwise

WAIT_BOUND = 30.0  # seconds: far beyond any retry delay here


class IamRedis:
    """redis-server whose ``default`` user's passwords are the tokens it takes, as Memorystore
    with IAM auth would; administered as another user so that the tests can cut every
    connection of ``default`` (the pod's)."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        server.cli("ACL", "SETUSER", "admin", "on", ">admin-pw", "~*", "&*", "+@all")
        self.admin = redis.Redis(
            host=server.host, port=server.port, username="admin", password="admin-pw"
        )
        self.admin.execute_command("ACL", "LOG", "RESET")

    @property
    def url(self) -> str:  # no password: the token is the pod's only credential
        return f"redis://{self.server.host}:{self.server.port}/0"

    def accept(self, *tokens: str) -> None:
        """Take exactly these tokens from now on; connections that are up stay up."""
        passwords = [f">{token}" for token in tokens]
        self.admin.execute_command(
            "ACL", "SETUSER", "default", "on", "resetpass", *passwords, "~*", "&*", "+@all"
        )

    def cut_connections(self) -> int:
        """CLIENT KILL every connection of user default: they must reconnect."""
        killed: int = self.admin.execute_command("CLIENT", "KILL", "USER", "default")
        return killed

    def refused_auths(self) -> int:
        """AUTH attempts Redis refused (its ACL LOG)."""
        return sum(
            int(entry["count"]) for entry in self.admin.acl_log() if entry["reason"] == "auth"
        )

    def clients_of_default(self) -> int:
        listing = self.admin.execute_command("CLIENT", "LIST", "TYPE", "normal").decode()
        return sum(" user=default " in f" {line} " for line in listing.splitlines())


@pytest.fixture
def iam_redis(tmp_path: Path) -> Iterator[IamRedis]:
    with RedisServer(tmp_path / "redis") as server:
        peer = IamRedis(server)
        peer.accept(FIRST)
        yield peer
        peer.admin.close()


@pytest.fixture
async def pod_cache(
    iam_redis: IamRedis, gce_metadata: MetadataServer, metrics: ServingMetrics
) -> AsyncIterator[Callable[[], RedisAnswerCache]]:
    """pod_cache() -> the cache a pod with redis_auth=iam opens (closed after the test)."""
    caches: list[RedisAnswerCache] = []

    def make() -> RedisAnswerCache:
        # A generous timeout: a loaded test machine must not turn these into timeout tests.
        settings = serving_settings(
            redis_url=iam_redis.url, redis_auth="iam", redis_timeout_ms=1000
        )
        cache = open_answer_cache(settings, metrics)
        assert isinstance(cache, RedisAnswerCache)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        await cache.close()


def answer(key: bytes) -> Callable[[], Awaitable[bytes]]:
    async def compute() -> bytes:
        await asyncio.sleep(0)  # a model yields; a loop of misses must not starve the others
        return b"answer to " + key

    return compute


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``await condition()`` holds; a generous bound turns "never" into a failure
    that names the condition (it asserts nothing about how fast)."""
    async with asyncio.timeout(WAIT_BOUND):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.02)


def auth_failures(counter: Counter) -> float:
    reasons = ("no_credentials", "token_refresh", "wrongpass", "iam_backend", "refused")
    return sum(counter("memoserve_cache_auth_failures", reason=r) for r in reasons)


async def test_a_pod_connects_with_its_access_token(
    pod_cache: Callable[[], RedisAnswerCache], iam_redis: IamRedis, counter: Counter
) -> None:
    cache = pod_cache()
    assert await cache.warm_up()
    results = [(await cache.get_or_compute(b"q", answer(b"q")))[1] for _ in range(2)]
    assert results == [CacheResult.MISS, CacheResult.HIT]
    assert iam_redis.clients_of_default() == 1
    assert iam_redis.refused_auths() == 0
    assert cache.problem is None
    assert auth_failures(counter) == 0


async def test_every_node_of_a_cluster_shares_one_token(
    iam_redis: IamRedis, gce_metadata: MetadataServer, tmp_path: Path
) -> None:
    settings = serving_settings(redis_url=iam_redis.url, redis_auth="iam", redis_timeout_ms=1000)
    config = RedisConfig.from_settings(settings)
    with RedisServer(tmp_path / "node-2") as second:
        peer = IamRedis(second)
        peer.accept(FIRST)
        # What a cluster client does: one config per node, copied from the one it was given.
        nodes = [RedisClient(config), RedisClient(replace(config, port=second.port))]
        try:
            await asyncio.gather(*(node.connect() for node in nodes))
            assert [await node.ping() for node in nodes] == [b"PONG", b"PONG"]
        finally:
            for node in nodes:
                await node.close()
            assert config.credentials is not None
            await config.credentials.close()
            peer.admin.close()
    assert gce_metadata.tokens_served == [FIRST]  # one fetch for both nodes


async def test_a_connection_that_is_up_stays_up_when_the_token_changes(
    pod_cache: Callable[[], RedisAnswerCache], iam_redis: IamRedis, gce_metadata: MetadataServer
) -> None:
    gce_metadata.set_token(FIRST, expires_in=2)
    cache = pod_cache()
    source = cache.client.config.credentials
    assert source is not None
    assert await cache.warm_up()
    connections = iam_redis.admin.info("stats")["total_connections_received"]
    gce_metadata.set_token("ya29.second-token", expires_in=3600)

    async def pod_has_second() -> bool:
        return await source.credentials() == ("default", "ya29.second-token")

    await until(pod_has_second)
    iam_redis.accept("ya29.second-token")  # the first token is no longer taken
    for _ in range(10):
        assert await cache.client.ping() == b"PONG"
    # Same connection, not re-authenticated, not reopened (Memorystore keeps it authenticated).
    assert iam_redis.admin.info("stats")["total_connections_received"] == connections
    assert iam_redis.refused_auths() == 0


async def test_rotation_under_load_fails_no_request(
    pod_cache: Callable[[], RedisAnswerCache],
    iam_redis: IamRedis,
    gce_metadata: MetadataServer,
    counter: Counter,
) -> None:
    gce_metadata.set_token(FIRST, expires_in=2)  # the pod replaces it every second
    cache = pod_cache()
    source = cache.client.config.credentials
    assert source is not None
    assert await cache.warm_up()
    results: collections.Counter[CacheResult] = collections.Counter()
    stop = asyncio.Event()

    async def client(number: int) -> int:
        served = 0
        while not stop.is_set():
            key = f"key-{number}-{served % 16}".encode()
            value, result = await cache.get_or_compute(key, answer(key))
            assert value == b"answer to " + key  # fail-open: the right answer, whatever Redis did
            results[result] += 1
            served += 1
        return served

    async def hits_grow() -> bool:
        start = results[CacheResult.HIT]
        await asyncio.sleep(0.05)
        return results[CacheResult.HIT] >= start + 20

    clients = [asyncio.create_task(client(n)) for n in range(8)]
    try:
        await until(hits_grow)
        # Connections cut while the first token is the only one: back with the same token.
        assert iam_redis.cut_connections() >= 1
        await until(hits_grow)
        # Rotation: the metadata server hands out a new token, Redis takes both for a while.
        gce_metadata.set_token("ya29.second-token", expires_in=3600)
        iam_redis.accept(FIRST, "ya29.second-token")

        async def pod_has_second() -> bool:
            return await source.credentials() == ("default", "ya29.second-token")

        await until(pod_has_second)
        # Redis drops the old token and cuts every connection: the new ones must use the new.
        iam_redis.accept("ya29.second-token")
        assert iam_redis.cut_connections() >= 1
        await until(hits_grow)
    finally:
        stop.set()
        served = await asyncio.gather(*clients)
    assert all(count > 0 for count in served)
    assert iam_redis.refused_auths() == 0  # no connection ever offered a token Redis lacked
    assert auth_failures(counter) == 0
    assert iam_redis.clients_of_default() == 1  # back on one connection, with the new token
    assert cache.problem is None


async def test_a_refused_token_is_retried_with_backoff_while_serving_uncached(
    pod_cache: Callable[[], RedisAnswerCache],
    iam_redis: IamRedis,
    counter: Counter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    iam_redis.accept("a-token-of-someone-else")  # e.g. the role is not granted yet
    cache = pod_cache()
    assert not await cache.warm_up()
    for _ in range(30):
        value, result = await cache.get_or_compute(b"q", answer(b"q"))
        assert (value, result) == (b"answer to q", CacheResult.ERROR)
    refused = iam_redis.refused_auths()
    assert 1 <= refused < 30  # backoff (and the breaker): not one AUTH per request
    assert counter("memoserve_cache_auth_failures", reason="wrongpass") == refused
    assert cache.problem is not None
    assert DEFAULT_EMAIL in cache.problem
    assert "roles/memorystore.dbConnectionUser" in cache.problem
    iam_errors = [r for r in caplog.records if r.name.endswith(".iam") and r.levelno >= 40]
    assert len(iam_errors) == 1
    # The role is granted: a later attempt gets through, the cache works again.
    iam_redis.accept(FIRST)

    async def cached() -> bool:
        _, result = await cache.get_or_compute(b"q", answer(b"q"))
        return result is CacheResult.HIT

    await until(cached)
    assert cache.problem is None


class IamBackendPeer:
    """A RESP peer that answers AUTH as Memorystore does while its IAM backend is over quota
    (Google's documented reply), until ``refusing`` is cleared; then like Redis."""

    QUOTA = (
        b"-ERR (ERR_IAM_EXHAUSTED) Memorystore IAM authentication backend quota exceeded. "
        b"See https://cloud.google.com/memorystore/docs/cluster/manage-iam-auth#error_messages.\r\n"
    )

    def __init__(self) -> None:
        self.refusing = True
        self.connections = 0
        self.auths: list[list[bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        commands = hiredis.Reader()
        authenticated = False
        while data := await reader.read(65536):
            commands.feed(data)
            while (command := commands.gets()) is not False:
                name = command[0].upper()
                if name == b"AUTH":
                    self.auths.append(command[1:])
                    authenticated = not self.refusing
                    writer.write(b"+OK\r\n" if authenticated else self.QUOTA)
                elif not authenticated:
                    writer.write(b"-NOAUTH Authentication required.\r\n")
                elif name == b"PING":
                    writer.write(b"+PONG\r\n")
                else:
                    writer.write(b"$-1\r\n")  # GET of a key that is not there
        writer.close()


async def test_memorystore_iam_backend_errors_are_retried_with_backoff(
    gce_metadata: MetadataServer, caplog: pytest.LogCaptureFixture
) -> None:
    peer = IamBackendPeer()
    port = await peer.start()
    failures: list[str] = []
    source = IamTokenSource(GoogleAccessTokens(), on_failure=failures.append)
    config = RedisConfig.from_url(f"redis://127.0.0.1:{port}/0", timeout=1.0, credentials=source)
    client = RedisClient(config)
    try:
        for _ in range(30):
            with pytest.raises(RedisConnectionError):
                await client.get(b"k")
        assert 1 <= peer.connections < 30  # backed off, not one connect per command
        assert failures == ["iam_backend"] * peer.connections
        assert source.problem is not None
        assert "IAM backend" in source.problem
        # Google's side: a warning, not an error naming a fix on ours.
        assert [r.levelname for r in caplog.records if r.name.endswith(".iam")] == ["WARNING"]
        peer.refusing = False

        async def answered() -> bool:
            try:
                return await client.get(b"k") is None
            except RedisConnectionError:
                return False

        await until(answered)
        assert source.problem is None
        assert peer.auths[-1] == [b"default", FIRST.encode()]  # AUTH default <token>
    finally:
        await client.close()
        await source.close()
        assert peer.server is not None
        peer.server.close()
