"""Memorystore IAM auth: each new Redis connection sends ``AUTH default <access token>``, an
OAuth2 access token of the pod's Google service account (on GKE: Workload Identity).

Google's rules (Memorystore for Valkey and for Redis Cluster, "About IAM authentication"): a
token is good for about an hour; a NEW connection needs a valid one; a connection that is
already authenticated stays so after its token expires. So one token is fetched, kept, and
replaced in the background well before it expires; it goes out on new connections only, and
nothing is done to connections that are up.

The replies Google documents for IAM auth (manage-iam-auth, "error messages"):

* ``-WRONGPASS invalid username-password pair or user is disabled``: the token was refused
  (the account lacks the role, the token expired, or an IAM change has not propagated yet);
* ``-NOAUTH Authentication required``: no token was sent (not us: we always send one);
* ``-ERR (ERR_IAM_EXHAUSTED) Memorystore IAM authentication backend quota exceeded. ...`` and
  ``-ERR (ERR_IAM_OTHER) Memorystore IAM authentication backend error. ...``: Memorystore's IAM
  backend is overloaded or failed; Google says to retry with exponential backoff.

Every one of them fails that connection attempt: :class:`~memoserve_serving.cache.resp.
RedisClient` retries with its growing backoff while the cache serves uncached (fail-open, as for
a dead Redis), and the failure is counted (``on_failure(reason)``) and logged: one line naming
the cause and the fix, again only when the cause changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from memoserve_serving.cache.resp_connection import CredentialsUnavailable, RedisAuthError

log = logging.getLogger(__name__)

USERNAME = "default"  # the only user name Memorystore IAM auth accepts

# A token is replaced when this much of its life is left (or at half-life, if it came with less
# than twice that), so a slow or briefly failing metadata server has minutes to recover.
REFRESH_MARGIN = 300.0
MIN_REFRESH_DELAY = 1.0
# After a failed fetch: retry after 1 s, doubling up to 30 s.
RETRY_FIRST = 1.0
RETRY_MAX = 30.0

FIX = (
    "bind the pod's Kubernetes service account to a Google service account (Workload Identity) "
    "that has roles/memorystore.dbConnectionUser (Memorystore for Valkey) or "
    "roles/redis.dbConnectionUser (Memorystore for Redis Cluster)"
)


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)  # a credential: never in a log line
    lifetime: float  # seconds it was still valid for when fetched
    account: str | None = None  # the service account's email, for messages


class TokenUnavailable(Exception):
    """No token could be had; ``reason`` is the metric label, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TokenFetcher(Protocol):
    def fetch(self) -> AccessToken:
        """Blocking (a thread runs it, one call at a time); raises :class:`TokenUnavailable`."""
        ...


def refresh_delay(lifetime: float, margin: float = REFRESH_MARGIN) -> float:
    """Seconds until a token that is valid for ``lifetime`` more seconds is replaced."""
    return max(lifetime - margin, lifetime / 2, MIN_REFRESH_DELAY)


def refusal_reason(error: RedisAuthError) -> str:
    """The metric label of a refused AUTH: wrongpass, iam_backend (retry later) or refused."""
    text = str(error)
    if "WRONGPASS" in text:
        return "wrongpass"
    if "ERR_IAM_" in text:
        return "iam_backend"
    return "refused"


class IamTokenSource:
    """A :class:`~memoserve_serving.cache.redis_config.CredentialsSource` of access tokens.

    The first :meth:`credentials` call fetches a token; from then on a timer replaces it before
    it expires (``refresh_delay``), and after a failed fetch retries with backoff while the
    current token, if any, is still used. Callers never wait for a refresh, only for a first
    token (or one to replace an expired one), and never longer than they choose.
    """

    def __init__(
        self,
        fetcher: TokenFetcher,
        *,
        on_failure: Callable[[str], None] | None = None,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        self._fetcher = fetcher
        self._on_failure = on_failure
        self._margin = refresh_margin
        self._token: str | None = None
        self._expires_at = 0.0  # time.monotonic()
        self._account: str | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._retry_delay = 0.0
        self._closed = False
        # What is wrong now: getting a token (why the last fetch failed), or using it (the
        # last refusal). Logged when the cause changes.
        self._fetch_failure: str | None = None
        self._refusal: str | None = None
        self._logged: dict[str, str] = {}

    # -- CredentialsSource --------------------------------------------------------------------

    async def credentials(self) -> tuple[str | None, str]:
        token = self._valid_token()
        if token is not None:
            return USERNAME, token
        if self._closed:
            raise CredentialsUnavailable("the IAM token source is closed")
        task = self._fetching
        if task is None:
            if self._timer is not None and self._fetch_failure is not None:
                # A failed fetch waits for its retry: connect attempts must not hammer the
                # metadata server (every node of a cluster makes its own).
                raise CredentialsUnavailable(self._token_problem() or "no IAM access token")
            task = self._start_fetch(asyncio.get_running_loop())
        # Shielded: a caller that gives up (its connect deadline) leaves the fetch running.
        await asyncio.shield(task)
        token = self._valid_token()
        if token is not None:
            return USERNAME, token
        raise CredentialsUnavailable(self._token_problem() or "no IAM access token")

    def accepted(self, address: str) -> None:
        if self._refusal is not None:
            log.info("Redis IAM auth: %s accepted the access token", address)
        self._refusal = None
        self._logged.pop("refusal", None)

    def rejected(self, address: str, error: RedisAuthError) -> None:
        if isinstance(error, CredentialsUnavailable):
            return  # nothing was sent; counted when the fetch failed
        reason = refusal_reason(error)
        self._count(reason)
        if reason == "iam_backend":  # Google's side: nothing to fix here, retried with backoff
            self._refusal = f"Memorystore's IAM backend failed ({error}); retrying with backoff"
            self._log_once("refusal", reason, self._refusal, logging.WARNING)
            return
        account = self._account or "the pod's Google service account"
        self._refusal = (
            f"Redis refused the IAM access token of {account} ({error}); retrying with backoff. "
            f"Fix: {FIX} (IAM changes take a few minutes to apply)"
        )
        self._log_once("refusal", reason, self._refusal, logging.ERROR)

    @property
    def problem(self) -> str | None:
        return self._token_problem() or self._refusal

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._fetching = self._fetching, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- fetching -----------------------------------------------------------------------------

    def _start_fetch(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task[None]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._fetching = loop.create_task(self._fetch(), name="memoserve-iam-token")
        return task

    def _refresh_due(self) -> None:
        self._timer = None
        if not self._closed and self._fetching is None:
            self._start_fetch(asyncio.get_running_loop())

    async def _fetch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # google-auth blocks (HTTP to the metadata server): never on the event loop.
            token = await asyncio.to_thread(self._fetcher.fetch)
        except TokenUnavailable as exc:
            delay = self._fetch_failed(exc.reason, str(exc))
        except Exception as exc:  # not one google-auth documents: still never fatal, but loud
            log.exception("Redis IAM auth: fetching an access token failed unexpectedly")
            delay = self._fetch_failed("token_refresh", repr(exc))
        else:
            self._token, self._account = token.value, token.account or self._account
            self._expires_at = time.monotonic() + token.lifetime
            self._retry_delay = 0.0
            delay = refresh_delay(token.lifetime, self._margin)
            if self._fetch_failure is not None:
                log.info("Redis IAM auth: got an access token again")
            self._fetch_failure = None
            self._logged.pop("token", None)
        finally:
            self._fetching = None
        if not self._closed:
            self._timer = loop.call_later(delay, self._refresh_due)

    def _fetch_failed(self, reason: str, detail: str) -> float:
        """Record a failed fetch; the delay before the next attempt."""
        self._count(reason)
        self._fetch_failure = detail
        problem = self._token_problem() or detail
        self._log_once("token", f"{reason}: {detail}", problem, logging.ERROR)
        self._retry_delay = min(max(2 * self._retry_delay, RETRY_FIRST), RETRY_MAX)
        return self._retry_delay

    def _valid_token(self) -> str | None:
        if self._token is not None and time.monotonic() < self._expires_at:
            return self._token
        return None

    def _token_problem(self) -> str | None:
        """Why there is no token, or will soon be none (from the last failed fetch)."""
        detail = self._fetch_failure
        if detail is None:
            return None
        if self._valid_token() is not None:
            left = self._expires_at - time.monotonic()
            return (
                f"cannot refresh the IAM access token ({detail}); the current one expires in "
                f"{left:.0f} s, then the cache serves uncached. Fix: {FIX}"
            )
        return (
            f"no IAM access token ({detail}); the cache serves uncached until there is one. "
            f"Fix: {FIX}"
        )

    # -- reporting ----------------------------------------------------------------------------

    def _count(self, reason: str) -> None:
        if self._on_failure is not None:
            self._on_failure(reason)

    def _log_once(self, slot: str, cause: str, message: str, level: int) -> None:
        """Log ``message`` (one line) unless the same cause was logged last for ``slot``."""
        if self._logged.get(slot) == cause:
            return
        self._logged[slot] = cause
        log.log(level, "Redis IAM auth: %s", message.replace("\n", " "))
