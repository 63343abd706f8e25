"""A lean asyncio Redis client for the cache hot path: one connection, auto-pipelined.

Why not redis-py: its asyncio client costs ~75 µs of CPU per GET inside a server (pool, locks,
command objects); this one costs ~10 µs (performance baselines, rows 4c and 7a). How:

* ONE connection per process. Every command issued during one event-loop iteration is buffered
  and leaves in a single ``transport.write`` at the next iteration (auto-pipelining), so many
  concurrent requests cost one syscall and one Redis read.
* Redis answers in order, so replies are matched to waiters FIFO. A command that times out or
  whose caller is cancelled keeps its slot; its late reply is read and dropped, so matching
  never slips.
* All commands share one timeout, so deadlines are ordered like the queue and one timer (not
  one per command) expires them.
* Connection loss fails every waiting command at once; the next command reconnects, after a
  short, growing backoff if connecting failed (a dead server is not hammered).
* A new connection AUTHs with the config's password, or with what the config's credentials
  source gives at that moment (an IAM access token: cache/iam.py); a connection that is up is
  never re-authenticated. Refused credentials back off longer.

Commands are sent when the method is *called* (so calls made one after another pipeline, in
call order); the returned future yields the reply (nobody has to await it: a write whose reply
does not matter to the caller can be left to complete on its own).
Error replies (OOM, NOAUTH, WRONGTYPE...) raise :class:`RedisReplyError`, never come back as values.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any

from memoserve_serving.cache.redis_config import RedisConfig
from memoserve_serving.cache.resp_connection import (
    Arg,
    Connection,
    CredentialsUnavailable,
    RedisAuthError,
    RedisConnectionError,
    RedisTimeout,
    pack_command,
)

log = logging.getLogger(__name__)

_pack = pack_command

# Reconnect backoff after a failed connect: doubles from the first to the last value, with
# jitter so that many replicas do not reconnect in lock-step after a failover.
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0
_AUTH_BACKOFF_MAX = 10.0


class RedisClient:
    """One lazily (re)connected Redis connection. Create it anywhere; it connects on first use."""

    def __init__(self, config: RedisConfig, *, greeting: Sequence[tuple[Arg, ...]] = ()) -> None:
        self.config = config
        # Sent first on every new connection, replies dropped: per-connection state such as a
        # cluster replica's READONLY, which a reconnect would otherwise lose.
        self._greeting = [_pack(command) for command in greeting]
        self._timeout = config.timeout
        self._conn: Connection | None = None
        self._connecting: asyncio.Task[Connection] | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.open

    # -- commands ---------------------------------------------------------------------------

    def execute(self, *args: Arg) -> asyncio.Future[Any]:
        """Send any command now; await the reply."""
        return self._request(_pack(args))

    def get(self, key: bytes) -> asyncio.Future[bytes | None]:
        return self._request(_pack((b"GET", key)))

    def mget(self, *keys: bytes) -> asyncio.Future[list[bytes | None]]:
        return self._request(_pack((b"MGET", *keys)))

    def set(
        self, key: bytes, value: bytes, *, px: int | None = None, nx: bool = False
    ) -> asyncio.Future[bytes | None]:
        """SET [PX ms] [NX]: b"OK", or None when ``nx`` and the key exists."""
        if px is None:
            args: tuple[Arg, ...] = (b"SET", key, value)
        else:
            args = (b"SET", key, value, b"PX", px)
        return self._request(_pack((*args, b"NX") if nx else args))

    def delete(self, *keys: bytes) -> asyncio.Future[int]:
        return self._request(_pack((b"DEL", *keys)))

    def ping(self) -> asyncio.Future[bytes]:
        return self._request(_pack((b"PING",)))

    def send_nowait(self, *args: Arg) -> bool:
        """Best effort, fire-and-forget: send if connected, drop the reply (and any error).

        For clean-up that must happen even while the caller is being cancelled (releasing a
        lock that would otherwise only expire); False when there is no live connection.
        """
        conn = self._conn
        if conn is None or not conn.open:
            return False
        conn.send_nowait(_pack(args), conn.loop.time() + self._timeout)
        return True

    # -- connection management --------------------------------------------------------------

    def _request(self, packed: bytes) -> asyncio.Future[Any]:
        conn = self._conn
        if conn is not None and conn.open:  # the hot path: no coroutine, just a future
            return conn.send(packed, conn.loop.time() + self._timeout)
        # A task, not a bare coroutine, so that the command is on its way without being
        # awaited, as on the hot path (callers rely on call order = send order).
        return asyncio.ensure_future(self._request_after_connect(packed))

    async def _request_after_connect(self, packed: bytes) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout  # connect and reply share one budget
        conn = await self._wait_connected(loop, deadline)
        return await conn.send(packed, deadline)

    async def _wait_connected(self, loop: asyncio.AbstractEventLoop, deadline: float) -> Connection:
        if self._closed:
            raise RedisConnectionError("Redis client is closed")
        task = self._connecting
        if task is None:
            conn = self._conn
            if conn is not None and conn.open:  # connected while this coroutine was starting
                return conn
            if loop.time() < self._retry_at:
                raise RedisConnectionError(
                    f"not connected to {self.config.address} (reconnect backoff)"
                )
            task = self._connecting = loop.create_task(self._open(loop))
            task.add_done_callback(self._connect_done)
        try:
            # Shielded: a caller giving up (its own deadline, or cancelled) must not abort the
            # connect that later callers will use.
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            raise RedisTimeout(f"timed out connecting to {self.config.address}") from None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> Connection:
        config = self.config
        deadline = loop.time() + config.effective_connect_timeout
        username, password = await self._credentials(deadline)
        source = config.credentials
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, config.effective_stall_timeout, config.address),
                    config.host,
                    config.port,
                    ssl=config.ssl_context,
                    server_hostname=config.host if config.tls else None,
                )
                try:
                    await conn.handshake(username, password, config.db, deadline)
                except BaseException as exc:
                    conn.abort("handshake failed", quiet=True)  # the caller reports it
                    if source is not None and isinstance(exc, RedisAuthError):
                        source.rejected(config.address, exc)
                    raise
                if source is not None:
                    source.accepted(config.address)
        except TimeoutError:
            raise RedisTimeout(
                f"connecting to {config.address} took over {config.effective_connect_timeout} s"
            ) from None
        except OSError as exc:  # refused, unreachable, TLS verification failed, ...
            raise RedisConnectionError(f"cannot connect to {config.address}: {exc}") from exc
        return conn

    async def _credentials(self, deadline: float) -> tuple[str | None, str | None]:
        """What this connection AUTHs with: the config's, or its source's (IAM tokens), within
        the connect budget (a token being fetched must not hold every request up)."""
        config = self.config
        source = config.credentials
        if source is None:
            return config.username, config.password
        try:
            async with asyncio.timeout_at(deadline):
                return await source.credentials()
        except TimeoutError:
            raise CredentialsUnavailable(
                f"no credentials for {config.address} yet (an IAM access token is being fetched)"
            ) from None

    def _connect_done(self, task: asyncio.Task[Connection]) -> None:
        # Runs before any caller awaiting the task resumes (first callback registered).
        self._connecting = None
        if task.cancelled():
            return
        exc = task.exception()  # also marks it retrieved when every caller gave up waiting
        if exc is None:
            conn = task.result()
            if self._closed:
                conn.close()
                return
            self._conn = conn
            for packed in self._greeting:  # before the commands that waited for the connect
                conn.send_nowait(packed, conn.loop.time() + self._timeout)
            self._backoff = 0.0
            log.info("connected to Redis at %s", self.config.address)
            return
        # Refused credentials are retried more slowly: Memorystore's IAM backend limits new
        # connections (ERR_IAM_EXHAUSTED) and a fix (a role binding) takes minutes anyway.
        cap = _AUTH_BACKOFF_MAX if isinstance(exc, RedisAuthError) else _BACKOFF_MAX
        self._backoff = min(max(2 * self._backoff, _BACKOFF_FIRST), cap)
        pause = self._backoff * random.uniform(0.5, 1.0)  # jitter, not crypto
        self._retry_at = task.get_loop().time() + pause
        log.warning("Redis unavailable (%s); next connect attempt in %.2f s", exc, pause)

    async def connect(self) -> None:
        """Connect now (e.g. at startup) instead of on the first command; raises on failure."""
        loop = asyncio.get_running_loop()
        await self._wait_connected(loop, loop.time() + self.config.effective_connect_timeout)

    async def close(self) -> None:
        """Close the connection once the replies to what was sent are in (at most the connect
        timeout); commands still waiting then fail with :class:`RedisConnectionError`."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            grace = self.config.effective_connect_timeout
            if conn.open:
                await conn.drain(grace)
            await conn.close_and_wait(grace)
