"""Access tokens for Redis IAM AUTH (Memorystore for Valkey and Redis Cluster with
``authorizationMode: IAM_AUTH``), for the operator's own reads of the pods' cache counts
(``stats``).

The token is the pods' Google service account's (``spec.serviceAccount.gcpServiceAccount``),
by impersonation as the model preflight does it (the operator's account needs
``roles/iam.serviceAccountTokenCreator`` on it): so an AUTH the instance refuses means exactly
what the pods will meet, "the pods' account lacks the dbConnectionUser role", and the status
can say so. A service without a Google service account of its own is read with the operator's
own credentials (Application Default Credentials; none is an error, never anonymous access).

Against the emulator (``memorystore_endpoint``) there is no IAM: its nodes take any token, and
``EmulatorTokens`` says so in the token itself.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from memoserve_operator.settings import OperatorSettings

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class TokenSource(Protocol):
    async def token(self, account: str | None) -> str:
        """An access token of ``account`` (None: the operator's own)."""


class GoogleTokens:
    """Impersonated credentials per account, refreshed in a thread when they expire."""

    def __init__(self) -> None:
        self._credentials: dict[str | None, Any] = {}
        self._lock = asyncio.Lock()

    async def token(self, account: str | None) -> str:
        async with self._lock:
            credentials: Any = self._credentials.get(account)
            if credentials is None:
                credentials = await asyncio.to_thread(_credentials, account)
                self._credentials[account] = credentials
            if not credentials.valid:
                await asyncio.to_thread(_refresh, credentials)
            return str(credentials.token)


def _credentials(account: str | None) -> Any:
    import google.auth
    from google.auth import impersonated_credentials

    source, _ = google.auth.default(scopes=list(SCOPES))
    if account is None:
        return source
    return impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
        source_credentials=source, target_principal=account, target_scopes=list(SCOPES)
    )


def _refresh(credentials: Any) -> None:
    from google.auth.transport.requests import Request

    credentials.refresh(Request())


class EmulatorTokens:
    """The emulator has no IAM (its nodes accept any AUTH): a token that says what it is."""

    async def token(self, account: str | None) -> str:
        return f"emulator-token-for-{account or 'operator'}"


def tokens_for(settings: OperatorSettings) -> TokenSource:
    """Google's tokens; the emulator's stand-in only when the operator talks to an emulator."""
    return EmulatorTokens() if settings.memorystore_endpoint else GoogleTokens()
