"""One RESP2 connection as an asyncio protocol: write batching, FIFO replies, shared deadlines.

Used through :class:`~memoserve_serving.cache.resp.RedisClient`; see there for the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis

log = logging.getLogger(__name__)


class RedisError(Exception):
    """Talking to Redis failed."""


class RedisTimeout(RedisError):
    """No reply (or no connection) within the timeout."""


class RedisConnectionError(RedisError):
    """The connection could not be made or was lost; the command may or may not have run."""


class RedisAuthError(RedisConnectionError):
    """The server refused our credentials (or wants some): a configuration problem."""


class CredentialsUnavailable(RedisAuthError):
    """There were no credentials to send (e.g. no IAM access token yet): nothing reached Redis."""


class RedisReplyError(RedisError):
    """Redis answered with an error reply (OOM, WRONGTYPE, NOSCRIPT, ...)."""


Arg = bytes | str | int | float
# hiredis's stub types the argument as a 1-tuple; it takes any tuple of these.
pack_command = cast("Callable[[tuple[Arg, ...]], bytes]", hiredis.pack_command)

# (waiter, deadline); a None waiter is a fire-and-forget command whose reply is dropped.
_Slot = tuple["asyncio.Future[Any] | None", float]


class Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, stall_timeout: float, name: str) -> None:
        self.loop = loop
        self.name = name
        self.open = False
        self._stall_timeout = stall_timeout
        # Error replies become RedisReplyError *values* (hiredis does not raise them), so one
        # bad reply cannot disturb the others parsed from the same chunk.
        self._reader = hiredis.Reader(replyError=RedisReplyError)
        self._slots: deque[_Slot] = deque()
        self._expired = 0  # the first _expired slots already timed out (still await replies)
        self._outbox: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf  # when _timer fires
        self._transport: asyncio.Transport | None = None
        self._lost: asyncio.Future[None] = loop.create_future()
        self.writes = 0  # transport writes so far: shows how well commands pipeline

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.open = True
        sock = transport.get_extra_info("socket")
        if sock is not None:  # notice a dead peer on an idle connection too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection to {self.name} lost" + (f": {exc}" if exc else "")
        if self.open:
            log.warning("%s", reason)
        self._shut(reason)
        if not self._lost.done():
            self._lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        slots = self._slots
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:  # RESP2 has no boolean replies
                waiter, _ = slots.popleft()
                if self._expired:
                    self._expired -= 1
                if waiter is None or waiter.done():  # timed out or cancelled: drop the reply
                    continue
                if isinstance(reply, RedisReplyError):
                    waiter.set_exception(reply)
                else:
                    waiter.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.abort(f"protocol error from {self.name}: {exc!r}")

    def eof_received(self) -> bool | None:
        return None  # the server closed: let the transport close, connection_lost fails waiters

    # -- requests ---------------------------------------------------------------------------

    def send(self, packed: bytes, deadline: float) -> asyncio.Future[Any]:
        waiter = self.loop.create_future()
        if self.open:
            self._enqueue(packed, waiter, deadline)
        else:  # lost between the caller's check and now: fail at once, not at the deadline
            waiter.set_exception(RedisConnectionError(f"connection to {self.name} lost"))
        return waiter

    def send_nowait(self, packed: bytes, deadline: float) -> None:
        if self.open:
            self._enqueue(packed, None, deadline)

    def _enqueue(self, packed: bytes, waiter: asyncio.Future[Any] | None, deadline: float) -> None:
        # Every command gets the same timeout, so deadlines grow along the queue and one timer
        # for the oldest unexpired command suffices. (Only a command that waited for a
        # reconnect carries an older deadline; it may then expire up to one timeout late.)
        if not self._outbox:
            # Flush after everything that runs in this loop iteration has queued its commands.
            self.loop.call_soon(self._flush)
        self._outbox.append(packed)
        self._slots.append((waiter, deadline))
        if deadline < self._timer_at:  # no timer, or it waits for a later stall check
            self._arm(deadline)

    def _flush(self) -> None:
        outbox = self._outbox
        if not outbox:
            return
        data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        outbox.clear()
        if self.open and self._transport is not None:
            self._transport.write(data)
            self.writes += 1

    def _expire(self) -> None:
        """Time out every command past its deadline; drop the connection if it has stalled."""
        self._timer = None
        self._timer_at = math.inf
        now = self.loop.time()
        slots = self._slots
        index = self._expired
        while index < len(slots):
            waiter, deadline = slots[index]
            if deadline > now:
                break
            if waiter is not None and not waiter.done():
                waiter.set_exception(RedisTimeout(f"no reply from {self.name} in time"))
            index += 1
        self._expired = index
        # Replies come in order, so if the oldest command has waited this long the server or
        # the path to it is gone (or hung): nothing queued behind it can be answered either.
        if slots and now - slots[0][1] >= self._stall_timeout:
            self.abort(f"no reply from {self.name} for {self._stall_timeout:.1f} s")
            return
        if index < len(slots):
            self._arm(slots[index][1])
        elif slots:  # only expired slots left: check for a stall later
            self._arm(slots[0][1] + self._stall_timeout)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._expire)
        self._timer_at = when

    # -- lifecycle --------------------------------------------------------------------------

    async def handshake(
        self, username: str | None, password: str | None, db: int, deadline: float
    ) -> None:
        """AUTH, SELECT and PING in one round trip; a clear error if any is refused."""
        steps: list[tuple[str, asyncio.Future[Any]]] = []
        if password is not None:
            auth: tuple[Arg, ...] = (b"AUTH", password)
            if username:
                auth = (b"AUTH", username, password)
            steps.append(("AUTH", self.send(pack_command(auth), deadline)))
        if db:
            steps.append(("SELECT", self.send(pack_command((b"SELECT", db)), deadline)))
        # PING proves the server really serves us (a stopped process still accepts TCP) and
        # turns a missing password into an error now instead of on every command.
        steps.append(("PING", self.send(pack_command((b"PING",)), deadline)))
        replies = await asyncio.gather(*(f for _, f in steps), return_exceptions=True)
        for (step, _), reply in zip(steps, replies, strict=True):
            if not isinstance(reply, BaseException):
                continue
            if not isinstance(reply, RedisReplyError):
                raise reply
            message = str(reply)
            if step == "AUTH" or message.startswith(("NOAUTH", "WRONGPASS")):
                hint = "" if password is not None else " (no password configured)"
                raise RedisAuthError(f"{self.name} refused authentication{hint}: {message}")
            raise RedisConnectionError(f"{step} failed on {self.name}: {message}")

    async def drain(self, grace: float) -> None:
        """Wait (at most ``grace`` seconds) for the replies to everything sent so far: a store
        that nobody awaits still lands before a clean close."""
        if not self._slots and not self._outbox:
            return
        # Replies come in order: once this one is in, so are all the earlier ones.
        with contextlib.suppress(RedisError):
            await self.send(pack_command((b"PING",)), self.loop.time() + grace)

    def abort(self, reason: str, *, quiet: bool = False) -> None:
        """Drop the connection now, failing every waiting command."""
        if self.open and not quiet:
            log.warning("dropping Redis connection: %s", reason)
        self._shut(reason)
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self._shut(f"connection to {self.name} closed")
        if self._transport is not None:
            self._transport.close()

    async def close_and_wait(self, grace: float) -> None:
        self.close()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._lost)
        except TimeoutError:  # e.g. a TLS close_notify the peer never answers
            self.abort("close timed out")

    def _shut(self, reason: str) -> None:
        self.open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
        self._outbox.clear()
        slots, self._slots = self._slots, deque()
        self._expired = 0
        for waiter, _ in slots:
            if waiter is not None and not waiter.done():
                waiter.set_exception(RedisConnectionError(reason))
