"""Which cache a local run uses, in order:

1. ``--redis-url``, or the spec's ``cache.external`` Redis: used as given, after a PING (an
   unreachable one is an error, not a silent fallback). A password Secret the spec names cannot
   be read here: ``--redis-password`` or the environment stands in for it.
2. A Memorystore cache (``memorystore``, ``existingMemorystore``) has no local instance: a
   ``redis-server`` on PATH, started for this run on a free loopback port and stopped on exit;
   a sharded one (``valkey``, ``redisCluster``, ``existingValkey``, ``existingRedisCluster``)
   gets a local Redis Cluster of as many primaries as the spec has shards (no replicas, no IAM
   auth, no TLS: the serving pods' cluster client is what runs, against real slots), started
   with ``redis-cli --cluster create``; a Valkey with cluster mode off gets one redis-server;
3. else the in-process LRU (:class:`~memoserve_serving.cache.local.LocalAnswerCache`), with a
   notice.

A spec without a cache (or with ``enabled: false``) runs uncached, as in the cluster, unless
``--redis-url`` asks for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memoserve_cli.run import RunError
from memoserve_contract.settings import ServingSettings, env_var

STAND_IN_MAX_MEMORY = "256mb"
# A laptop's stand-in for a sharded cache: the spec's shard count, up to this many primaries.
STAND_IN_MAX_SHARDS = 8

if TYPE_CHECKING:
    from memoserve_contract.resource.inferenceservice import InferenceService
    from memoserve_serving.cache.base import AnswerCache
    from memoserve_serving.cache.redis_config import RedisConfig
    from memoserve_serving.metrics import ServingMetrics

LOCAL_CACHE_BYTES = 256 * 1024 * 1024  # the in-process stand-in's size bound
PROBE_SECONDS = 3.0  # for the PING that checks a given Redis before serving


@dataclass(frozen=True)
class CachePlan:
    """The cache of a local run: a Redis URL, the in-process stand-in, or none."""

    description: str  # for the banner
    redis_url: str | None = None
    redis_password: str | None = None
    redis_ca_file: Path | None = None
    in_process: bool = False
    enabled: bool = True


def plan_cache(
    isvc: InferenceService,
    *,
    redis_url: str | None,
    redis_password: str | None,
    redis_ca_file: Path | None,
    stack: contextlib.ExitStack,
    workdir: Path,
    notice: Callable[[str], None],
) -> CachePlan:
    """Decide (and start, on ``stack``) the cache for ``isvc``; RunError for a bad Redis."""
    from memoserve_contract.redis_endpoint import external_endpoint

    cache = isvc.spec.cache
    source = cache.source if cache is not None else None
    if redis_url is not None:
        if source is None:
            notice("the spec has no cache (the cluster serves it uncached); --redis-url adds one")
        return _given("--redis-url", redis_url, redis_password, redis_ca_file)
    if cache is None or source is None:
        return CachePlan("off: the spec has no cache, every request runs the model", enabled=False)
    endpoint = external_endpoint(isvc)
    if endpoint is None or cache.external is None:
        shards = _stand_in_shards(isvc)
        if shards is not None and shutil.which("redis-cli") is not None:
            plan = _cluster_stand_in(f"spec.cache.{source}", shards, stack, workdir, notice)
            if plan is not None:
                return plan
        return _stand_in(f"spec.cache.{source}", stack, workdir, notice)
    secret = cache.external.password_secret_ref
    if secret is not None and redis_password is None:
        notice(
            f"spec.cache.external.passwordSecretRef (Secret {secret.name}) cannot be read "
            f"locally: pass --redis-password or set {env_var('redis_password')}"
        )
    if cache.external.ca_secret_ref is not None and redis_ca_file is None:
        notice(
            "spec.cache.external.caSecretRef cannot be read locally: pass --redis-ca-file "
            "(else the system's trusted CAs verify the server)"
        )
    return _given("spec.cache.external", endpoint.url, redis_password, redis_ca_file)


def _given(where: str, url: str, password: str | None, ca_file: Path | None) -> CachePlan:
    address = check_redis(where, url, password, ca_file)
    return CachePlan(f"Redis at {address} ({where})", url, password, ca_file)


def _stand_in(
    what: str, stack: contextlib.ExitStack, workdir: Path, notice: Callable[[str], None]
) -> CachePlan:
    """A local stand-in for a Memorystore instance: redis-server if there is one, else LRU."""
    binary = shutil.which("redis-server")
    if binary is not None:
        from memoserve_dev.redis_server import RedisServer, RedisServerError

        # A cache, as Memorystore is configured for memoserve: evict, never refuse a write.
        config = {"maxmemory": STAND_IN_MAX_MEMORY, "maxmemory-policy": "allkeys-lru"}
        server = RedisServer(workdir / "redis", config=config, binary=binary)
        try:
            stack.enter_context(server)
        except RedisServerError as exc:
            notice(f"{exc}: caching in this process instead")
        else:
            return CachePlan(
                f"redis-server on 127.0.0.1:{server.port} standing in for {what} "
                "(started for this run, stopped on exit)",
                server.url,
            )
    else:
        notice(
            f"no redis-server on PATH: answers are cached in this process only (LRU, "
            f"{LOCAL_CACHE_BYTES >> 20} MiB, gone on exit); install redis-server to cache in Redis"
        )
    return CachePlan(
        f"in-process LRU ({LOCAL_CACHE_BYTES >> 20} MiB) standing in for {what}", in_process=True
    )


def _stand_in_shards(isvc: InferenceService) -> int | None:
    """How many primaries stand in for a sharded cache (None: not a cluster-mode one)."""
    cache = isvc.spec.cache
    if cache is None or not cache.sharded:
        return None
    spec = cache.valkey or cache.redis_cluster
    if spec is None:  # an existing instance: its shape is Google's to tell
        return 3
    if cache.valkey is not None and not cache.valkey.cluster:
        return None  # cluster mode off: one primary, as the plain stand-in is
    return min(spec.shards, STAND_IN_MAX_SHARDS)


def _cluster_stand_in(
    what: str,
    shards: int,
    stack: contextlib.ExitStack,
    workdir: Path,
    notice: Callable[[str], None],
) -> CachePlan | None:
    """A local Redis Cluster for a sharded cache; None (with a notice) when it cannot start."""
    from memoserve_dev.redis_cluster import RedisCluster
    from memoserve_dev.redis_server import RedisServerError

    config = {"maxmemory": STAND_IN_MAX_MEMORY, "maxmemory-policy": "allkeys-lru"}
    cluster = RedisCluster(workdir / "redis-cluster", shards=shards, replicas=0, config=config)
    try:
        stack.enter_context(cluster)
    except (RedisServerError, OSError) as exc:
        notice(f"no local Redis Cluster ({exc}): one redis-server stands in instead")
        return None
    ports = sorted(node.port for node in cluster.nodes)
    return CachePlan(
        f"a Redis Cluster of {shards} primaries on 127.0.0.1 ports {', '.join(map(str, ports))} "
        f"standing in for {what} (no replicas, IAM auth or TLS; started for this run, stopped "
        "on exit)",
        cluster.url,
    )


def in_process_cache(settings: ServingSettings, metrics: ServingMetrics) -> AnswerCache:
    """A :data:`~memoserve_serving.state.CacheFactory` for the in-process stand-in."""
    from memoserve_serving.cache.local import LocalAnswerCache

    return LocalAnswerCache(LOCAL_CACHE_BYTES, settings.cache_ttl_seconds, metrics)


def check_redis(where: str, url: str, password: str | None, ca_file: Path | None) -> str:
    """PING the Redis at ``url``; its address (never the password), or RunError naming it."""
    from memoserve_serving.cache.redis_config import RedisConfig
    from memoserve_serving.cache.resp_connection import RedisError

    try:
        config = RedisConfig.from_url(
            url,
            password=password,
            ca_file=ca_file,
            timeout=PROBE_SECONDS,
            connect_timeout=PROBE_SECONDS,
        )
    except (ValueError, OSError) as exc:  # a bad URL, an unreadable CA file
        raise RunError(f"{where}: {exc}") from None
    client_log = logging.getLogger("memoserve_serving.cache")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # its reconnect warning would repeat the error below
    try:
        asyncio.run(_ping(config))
    except RedisError as exc:
        raise RunError(f"{where}: {exc}") from None  # the message names the address
    finally:
        client_log.setLevel(level)
    return config.address


async def _ping(config: RedisConfig) -> None:
    from memoserve_serving.cache.resp import RedisClient

    client = RedisClient(config)
    try:
        await client.connect()
        await client.ping()
    finally:
        await client.close()
