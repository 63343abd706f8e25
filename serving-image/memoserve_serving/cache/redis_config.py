"""Where and how to reach Redis: a redis:// or rediss:// URL plus the Memorystore extras.

Parsing and TLS setup happen once, when the server starts (reading the CA file is a blocking
call, so it must not happen on the event loop's hot path); the client only reads the result.
Credentials that change while the server runs (IAM access tokens) come from a
:class:`CredentialsSource` the client asks at every new connection.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from memoserve_contract.settings import ServingSettings
from memoserve_serving.cache.resp_connection import RedisAuthError

DEFAULT_PORT = 6379

log = logging.getLogger(__name__)


class CredentialsSource(Protocol):
    """Credentials for each NEW connection; a connection that is up keeps the ones it used.

    One source serves every connection made from one :class:`RedisConfig`, including the
    per-node copies a cluster client makes with ``dataclasses.replace``: one token, one refresh.
    """

    async def credentials(self) -> tuple[str | None, str]:
        """(username, password) for AUTH; raises
        :class:`~memoserve_serving.cache.resp_connection.CredentialsUnavailable` when there are
        none to send. The caller bounds the wait."""
        ...

    def accepted(self, address: str) -> None:
        """The server at ``address`` took the credentials."""
        ...

    def rejected(self, address: str, error: RedisAuthError) -> None:
        """The server at ``address`` refused them (its error reply is in ``error``)."""
        ...

    @property
    def problem(self) -> str | None:
        """Why the cache cannot authenticate now (for readiness), or None."""
        ...

    async def close(self) -> None:
        """Stop refreshing (its owner calls this once, after closing the clients)."""
        ...


@dataclass(frozen=True)
class RedisConfig:
    """Everything :class:`~memoserve_serving.cache.resp.RedisClient` needs to connect."""

    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None  # set for rediss://
    timeout: float = 0.05  # seconds, per command (and for waiting on a connect)
    connect_timeout: float | None = None  # seconds for connect + AUTH + SELECT; None = timeout
    # A connection whose oldest unanswered command is this overdue is treated as dead and
    # dropped (a silently black-holed TCP peer, e.g. after a failover, would otherwise time
    # every command out until the kernel gives up many minutes later). None = 10 x timeout,
    # at least 1 s, so one slow command (a big KEYS elsewhere, a fork) does not cost a reconnect.
    stall_timeout: float | None = None
    # Asked before every handshake instead of username/password (IAM auth); shared by copies.
    credentials: CredentialsSource | None = None

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    @property
    def address(self) -> str:
        """host:port for messages (never the password)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'rediss' if self.tls else 'redis'}://{host}:{self.port}/{self.db}"

    @property
    def effective_connect_timeout(self) -> float:
        return self.connect_timeout if self.connect_timeout is not None else self.timeout

    @property
    def effective_stall_timeout(self) -> float:
        if self.stall_timeout is not None:
            return self.stall_timeout
        return max(1.0, 10 * self.timeout)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        password: str | None = None,
        ca_file: Path | str | None = None,
        check_hostname: bool = False,
        timeout: float = 0.05,
        connect_timeout: float | None = None,
        stall_timeout: float | None = None,
        credentials: CredentialsSource | None = None,
    ) -> RedisConfig:
        """Parse ``redis[s]://[[user]:password@]host[:port][/db]``.

        ``password`` (the Memorystore AUTH string, kept out of the URL in a Secret) overrides a
        password in the URL. For rediss:// the server certificate is always verified, against
        ``ca_file`` if given (Memorystore's server CA) or the system store otherwise; the host
        name is checked only with ``check_hostname`` (Memorystore certificates name no host).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"Redis URL must start with redis:// or rediss://, got {url!r}")
        if not parts.hostname:
            raise ValueError("Redis URL has no host")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:  # urlsplit raises on a non-numeric or out-of-range port
            raise ValueError(f"Redis URL has a bad port: {exc}") from None
        db_text = parts.path.strip("/")
        if db_text and not db_text.isdigit():
            raise ValueError(f"Redis URL path must be a database number, got {parts.path!r}")
        username = unquote(parts.username) if parts.username else None
        url_password = unquote(parts.password) if parts.password else None
        ssl_context = None
        if parts.scheme == "rediss":
            ssl_context = make_ssl_context(ca_file, check_hostname=check_hostname)
        elif ca_file is not None:
            # Not fatal (the cache must never take the service down), but it smells of a
            # deployment that meant to use TLS.
            log.warning(
                "Redis CA file %s ignored: the Redis URL is redis://, not rediss://", ca_file
            )
        return cls(
            host=parts.hostname,
            port=port,
            db=int(db_text) if db_text else 0,
            username=username,
            password=password if password is not None else url_password,
            ssl_context=ssl_context,
            timeout=timeout,
            connect_timeout=connect_timeout,
            stall_timeout=stall_timeout,
            credentials=credentials,
        )

    @classmethod
    def from_settings(
        cls,
        settings: ServingSettings,
        *,
        on_auth_failure: Callable[[str], None] | None = None,
    ) -> RedisConfig:
        """The configuration ``settings`` describe (no I/O beyond reading the CA and password
        files). With ``redis_auth="iam"`` the credentials are the pod's Google access tokens
        (:mod:`memoserve_serving.cache.iam`); ``on_auth_failure(reason)`` counts each failure
        to get or use one."""
        if settings.redis_url is None:
            raise ValueError("redis_url is not set")
        credentials = None
        password = None
        if settings.redis_auth == "iam":
            from memoserve_serving.cache.google_tokens import GoogleAccessTokens
            from memoserve_serving.cache.iam import IamTokenSource

            _warn_about_iam_settings(settings)
            credentials = IamTokenSource(GoogleAccessTokens(), on_failure=on_auth_failure)
        else:
            secret = settings.redis_password
            password = secret.get_secret_value() if secret is not None else None
            if settings.redis_password_file is not None:
                password = read_password_file(settings.redis_password_file) or password
        return cls.from_url(
            settings.redis_url,
            password=password,
            ca_file=settings.redis_ca_file,
            check_hostname=settings.redis_tls_check_hostname,
            timeout=settings.redis_timeout_ms / 1000.0,
            credentials=credentials,
        )


def _warn_about_iam_settings(settings: ServingSettings) -> None:
    """IAM auth sends only the access token: say so when a password was configured too (it is
    not used, neither first nor as a fallback), and when the token would cross the network in
    clear."""
    if settings.redis_password is not None or settings.redis_password_file is not None:
        log.warning("redis_auth is iam: the configured Redis password is not used")
    if settings.redis_url is not None and settings.redis_url.startswith("redis://"):
        log.warning(
            "redis_auth is iam over redis:// (no TLS): access tokens are sent unencrypted; "
            "turn on the instance's in-transit encryption and use rediss://"
        )


def read_password_file(path: Path) -> str | None:
    """The AUTH string in ``path`` (trailing newline dropped); None when there is no such file
    (an optional Secret key that does not exist: the instance has no AUTH)."""
    try:
        return path.read_text().rstrip("\r\n") or None
    except FileNotFoundError:
        return None


def make_ssl_context(ca_file: Path | str | None, *, check_hostname: bool) -> ssl.SSLContext:
    """A client context that always verifies the server's chain; host name check optional."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    context.check_hostname = check_hostname  # must be switched off before verify_mode is set
    context.verify_mode = ssl.CERT_REQUIRED
    return context
