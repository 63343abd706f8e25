"""The cache counts the serving pods publish (memoserve_contract.cache_stats), read for status.

One short-lived connection per read, a short timeout, and at most one read per service every
``interval`` seconds (reconciles are triggered by every child event): a reconcile never waits
long on a Redis, and a Redis that does not answer only leaves the hit ratio as it was last read
(for ``keep`` seconds, then unknown). Only Redis the operator has the secrets of: Memorystore
(it reads the AUTH string and CA itself) and an external Redis without a password Secret (the
operator never reads a user's Secret).

A cluster (Valkey, Redis Cluster) is read with redis-py's ``RedisCluster`` from its discovery
endpoint: the window's keys live on several shards. IAM auth (no AUTH string) takes an access
token of the pods' Google service account (``iam_token``), so a refused AUTH is the pods'
problem too: ``refused`` then says which role that account lacks, for the status.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AuthenticationError, RedisClusterException, RedisError

from memoserve_contract import cache_stats
from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.status import ConditionType
from memoserve_operator.cache.iam_token import TokenSource
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.verdict import Verdict

log = logging.getLogger(__name__)


@dataclass
class _Seen:
    at: float  # when it was last asked (success or not)
    stats: CacheStats | None
    good_at: float  # when ``stats`` was read


class CacheStatsReader:
    def __init__(
        self,
        *,
        interval: float = 30.0,
        keep: float = 600.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
        tokens: TokenSource | None = None,
    ) -> None:
        self._interval, self._keep, self._timeout, self._clock = interval, keep, timeout, clock
        self._tokens = tokens
        self._seen: dict[str, _Seen] = {}
        self._refused: dict[str, str] = {}

    async def read(
        self, namespace: str, endpoint: RedisEndpoint, *, account: str | None = None
    ) -> CacheStats | None:
        """The window's counts for the service whose pods use cache namespace ``namespace``;
        ``account``: the pods' Google service account (IAM auth)."""
        now = self._clock()
        seen = self._seen.get(namespace)
        if seen is None or now - seen.at >= self._interval:
            stats = await self._ask(namespace, endpoint, now, account)
            if stats is not None:
                seen = self._seen[namespace] = _Seen(now, stats, now)
            elif seen is not None:
                seen.at = now
            else:
                seen = self._seen[namespace] = _Seen(now, None, now)
        if seen.stats is not None and now - seen.good_at <= self._keep:
            return seen.stats
        return None

    def forget(self, namespace: str) -> None:
        self._seen.pop(namespace, None)
        self._refused.pop(namespace, None)

    def refused(self, namespace: str) -> str | None:
        """Why the last read's AUTH was refused (None: it was not)."""
        return self._refused.get(namespace)

    async def _password(self, endpoint: RedisEndpoint, account: str | None) -> str | None:
        if endpoint.auth != "iam":
            return endpoint.password
        if self._tokens is None:
            raise AuthenticationError("no token source for IAM auth")
        return await self._tokens.token(account)

    async def _ask(
        self, namespace: str, endpoint: RedisEndpoint, now: float, account: str | None
    ) -> CacheStats | None:
        try:
            password = await self._password(endpoint, account)
        except Exception as exc:  # google.auth's errors: no credentials, impersonation refused
            log.info("no token to read the cache stats of %s: %s", namespace, exc)
            return None
        options: dict[str, Any] = {
            "password": password,
            "ssl": endpoint.tls,
            "ssl_ca_data": endpoint.ca_cert,
            "ssl_check_hostname": False,  # Memorystore's certificates name no host
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            "decode_responses": True,
        }
        client: redis.Redis | RedisCluster
        if endpoint.cluster:
            client = RedisCluster(host=endpoint.host, port=endpoint.port, **options)
        else:
            client = redis.Redis(host=endpoint.host, port=endpoint.port, **options)
        try:
            async with client.pipeline(transaction=False) as pipe:
                for key in cache_stats.window_keys(namespace, now):
                    pipe.hgetall(key)
                hashes = await pipe.execute()
        except (AuthenticationError, RedisClusterException) as exc:
            if _auth_refused(exc):
                self._refused[namespace] = refusal(endpoint, account, exc)
            else:
                self._failed(namespace, endpoint, exc)
            return None
        except (RedisError, OSError) as exc:
            self._failed(namespace, endpoint, exc)
            return None
        finally:
            await client.aclose()
        self._refused.pop(namespace, None)
        return cache_stats.summarize(hashes)

    def _failed(self, namespace: str, endpoint: RedisEndpoint, exc: Exception) -> None:
        # A refusal seen before stays reported: an unreachable Redis says nothing about AUTH.
        log.debug("cache stats of %s not read from %s: %s", namespace, endpoint.host, exc)


def _auth_refused(exc: Exception) -> bool:
    """An AUTH the server refused (a cluster client wraps it while it looks for a node)."""
    text = str(exc)
    return isinstance(exc, AuthenticationError) or any(
        word in text for word in ("WRONGPASS", "invalid password", "invalid username-password")
    )


# The role a principal needs to AUTH to an IAM-auth instance, per engine.
CONNECTION_ROLES = {
    "valkey": "roles/memorystore.dbConnectionUser",
    "redis-cluster": "roles/redis.dbConnectionUser",
}


def refusal(endpoint: RedisEndpoint, account: str | None, exc: Exception) -> str:
    """What a refused AUTH means, in the status's words."""
    where = f"{endpoint.host}:{endpoint.port}"
    if endpoint.auth != "iam":
        return f"the cache at {where} refused AUTH ({exc}): the AUTH string no longer matches"
    role = CONNECTION_ROLES.get(endpoint.engine, "the dbConnectionUser role")
    who = (
        f"the pods' Google service account {account}"
        if account
        else (
            "the operator's own account (the service names no "
            "spec.serviceAccount.gcpServiceAccount: its pods use another identity)"
        )
    )
    return (
        f"the cache at {where} refused AUTH with an access token of {who} ({exc}): "
        f"that account needs {role} on the instance's project, e.g. gcloud projects "
        f"add-iam-policy-binding PROJECT --member=serviceAccount:{account or 'ACCOUNT'} "
        f"--role={role}; the pods serve uncached until then"
    )


AUTH_REFUSED = "CacheAuthRefused"


def with_refusal(outcome: CacheOutcome, refused: str | None) -> CacheOutcome:
    """The cache step's outcome, with CacheReady=False when the cache refused the AUTH the
    pods make (the instance itself is fine: the endpoint stays, nothing is held)."""
    if refused is None or not outcome.verdict.ok:
        return outcome
    verdict = Verdict.false(ConditionType.CACHE_READY, AUTH_REFUSED, refused)
    status = outcome.status.model_copy(update={"message": refused})
    return dataclasses.replace(outcome, verdict=verdict, status=status)
