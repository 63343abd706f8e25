"""Access tokens of the pod's Google identity: google-auth's Application Default Credentials.

On GKE with Workload Identity that is the metadata server answering for the Google service
account the pod's Kubernetes service account is bound to. Blocking HTTP:
:class:`~memoserve_serving.cache.iam.IamTokenSource` calls :meth:`GoogleAccessTokens.fetch` in
a thread. google-auth is imported on first use, so a pod without IAM auth never loads it.
There is no fallback: no credentials means no token (and an uncached pod that says why).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from memoserve_serving.cache.iam import AccessToken, TokenUnavailable

if TYPE_CHECKING:
    from google.auth.transport.requests import Request

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# A token whose expiry the credentials do not say is treated as this short-lived (Google's
# tokens live an hour; refreshing more often than needed is harmless).
UNKNOWN_LIFETIME = 600.0


class _Credentials(Protocol):
    """What is used of google.auth.credentials.Credentials (whose refresh() is untyped)."""

    token: str | None
    expiry: datetime.datetime | None

    def refresh(self, request: Any) -> None: ...


class GoogleAccessTokens:
    """:class:`~memoserve_serving.cache.iam.TokenFetcher` over ``google.auth.default()``."""

    def __init__(self, scopes: tuple[str, ...] = (CLOUD_PLATFORM,)) -> None:
        self._scopes = list(scopes)
        self._credentials: _Credentials | None = None
        self._request: Request | None = None

    def fetch(self) -> AccessToken:
        from google.auth import default, exceptions
        from google.auth.transport.requests import Request

        try:
            if self._credentials is None:  # looked up again until found (it may be fixed)
                found, _ = default(scopes=self._scopes)
                self._credentials = cast(_Credentials, found)
            if self._request is None:
                self._request = Request()  # one HTTP session for every refresh
            self._credentials.refresh(self._request)
        except exceptions.DefaultCredentialsError as exc:
            raise TokenUnavailable(
                "no_credentials", f"no Application Default Credentials: {_one_line(exc)}"
            ) from exc
        except exceptions.GoogleAuthError as exc:  # RefreshError, TransportError, ...
            raise TokenUnavailable(
                "token_refresh", f"getting an access token failed: {_one_line(exc)}"
            ) from exc
        credentials = self._credentials
        token = credentials.token
        if not token:
            raise TokenUnavailable("token_refresh", "the credentials refreshed without a token")
        return AccessToken(
            value=token,
            lifetime=_lifetime(credentials.expiry),
            account=getattr(credentials, "service_account_email", None),
        )


def _lifetime(expiry: datetime.datetime | None) -> float:
    """Seconds until ``expiry`` (google-auth's expiries are naive UTC)."""
    if expiry is None:
        return UNKNOWN_LIFETIME
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=datetime.UTC)
    return (expiry - datetime.datetime.now(datetime.UTC)).total_seconds()


def _one_line(exc: BaseException) -> str:
    """google-auth's message on one line: its errors wrap errors (RefreshError(TransportError(
    message, response))), whose str() would be a tuple's repr."""
    while exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return " ".join(text.split()) or type(exc).__name__
