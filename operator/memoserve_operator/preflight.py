"""The optional model preflight: does ``spec.model.uri`` exist, and may the pods read it?

Asked before the Deployment is applied (``OperatorSettings.model_preflight``), so a typo in a
``gs://`` URI or a missing IAM binding shows in ``ModelReady`` at once, not as a crash loop on
a GPU node that was scaled up for it. It looks the way the pods will (storage.py's
``_resolve``): the object, else the objects under the prefix.

Who asks: the pods' Google service account (``spec.serviceAccount.gcpServiceAccount``), by
impersonation (the operator's account needs ``roles/iam.serviceAccountTokenCreator`` on it),
so "readable" means readable by the pods. A service without one is checked with the
operator's own credentials. Against an emulator (``storage_endpoint``) nobody is impersonated.

What it concludes:
- found (the pods' account may read it): nothing to report; the pods' own verdicts follow;
- missing, or denied to the pods' account: ``ModelReady=False/ModelPreflightFailed``, and the
  Deployment is held: not created, or left on its current (working) template;
- anything it cannot decide (the operator may not impersonate, denied to the operator itself,
  the API unreachable): nothing is held, the reason is logged; the pods are the judges.

A ``spec.model.server`` service is not checked: its server's own arguments say where it loads
from. A split service with the built-in runtime is: its model tier loads ``model.uri``.

Answers are kept a while (``FOUND_TTL``, ``FAILED_TTL``): a reconcile runs on every child
event, the preflight asks Cloud Storage at most once per service and TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import ConditionType
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.verdict import Verdict

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger(__name__)

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
FOUND_TTL = 600.0  # once found, the pods load it; a later deletion is theirs to report
FAILED_TTL = 20.0  # a fixed URI or IAM binding shows within a recheck or two
UNDECIDED_TTL = 60.0
REQUEST_TIMEOUT = 10.0
REASON = "ModelPreflightFailed"  # ends in Failed: Degraded for Argo CD (health.lua)


@dataclass(frozen=True)
class Preflight:
    """found | failed (``verdict`` says why) | undecided."""

    result: str
    verdict: Verdict | None = None

    @property
    def hold(self) -> bool:
        """Whether the Deployment waits (the pods would fail the same way)."""
        return self.result == "failed"


FOUND = Preflight("found")
UNDECIDED = Preflight("undecided")


def failed(message: str) -> Preflight:
    return Preflight("failed", Verdict.false(ConditionType.MODEL_READY, REASON, message))


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/name`` -> (bucket, name)."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def judge(uri: str, exc: Exception, *, as_pods: str | None) -> Preflight:
    """What an error of the storage client means (pure). ``as_pods``: the pods' Google
    service account the question was asked as, None when asked as the operator."""
    from google.api_core.exceptions import Forbidden, NotFound, Unauthorized
    from google.auth.exceptions import RefreshError

    bucket, _ = split_uri(uri)
    if isinstance(exc, NotFound):
        return failed(f"{uri}: bucket {bucket} does not exist")
    if isinstance(exc, Forbidden | Unauthorized) and as_pods is not None:
        return failed(f"{uri}: {as_pods} may not read it: {_first_line(exc)}")
    if isinstance(exc, RefreshError) and as_pods is not None:
        log.warning(
            "model preflight of %s skipped: the operator may not act as %s "
            "(it needs roles/iam.serviceAccountTokenCreator on it): %s",
            uri,
            as_pods,
            _first_line(exc),
        )
        return UNDECIDED
    log.warning("model preflight of %s undecided: %s", uri, _first_line(exc))
    return UNDECIDED


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:300]


def look(client: Client, uri: str) -> Preflight:
    """Blocking: the object, else a model file under the prefix (storage.py's rule)."""
    bucket_name, name = split_uri(uri)
    bucket = client.bucket(bucket_name)
    single = name and not name.endswith("/")
    if single and bucket.get_blob(name, timeout=REQUEST_TIMEOUT, retry=None) is not None:
        return FOUND
    prefix = name.rstrip("/") + "/" if name else ""
    blobs = client.list_blobs(
        bucket, prefix=prefix, page_size=50, timeout=REQUEST_TIMEOUT, retry=None
    )
    for page in blobs.pages:  # stop at the first page holding a file (not a "folder/")
        if any(not blob.name.endswith("/") for blob in page):
            return FOUND
    return failed(f"{uri}: no such object, and no objects under gs://{bucket_name}/{prefix}")


@dataclass
class _Answer:
    key: tuple[str, str | None]
    preflight: Preflight
    until: float


class ModelPreflight:
    """Lives in kopf's memo; one storage client per identity, opened on first use."""

    def __init__(
        self,
        settings: OperatorSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoint = settings.storage_endpoint
        self._clock = clock
        self._clients: dict[str | None, Client] = {}
        self._answers: dict[str, _Answer] = {}

    async def check(self, isvc: InferenceService) -> Preflight:
        uri = isvc.spec.model.uri
        if not uri.startswith("gs://"):
            return FOUND  # a local path is for `memoserve run`; the pods' own check is enough
        if isvc.spec.model.server is not None:
            # No container is handed model.uri: model.server's own arguments say where it
            # loads from, and its readiness probe is the judge.
            return FOUND
        pods = isvc.spec.service_account
        # An emulator has no IAM: nobody to impersonate.
        account = pods.gcp_service_account if pods and self._endpoint is None else None
        service, key = f"{isvc.namespace}/{isvc.name}", (uri, account)
        answer = self._answers.get(service)
        now = self._clock()
        if answer is not None and answer.key == key and now < answer.until:
            return answer.preflight
        preflight = await asyncio.to_thread(self._ask, uri, account)
        ttl = {"found": FOUND_TTL, "failed": FAILED_TTL}.get(preflight.result, UNDECIDED_TTL)
        self._answers[service] = _Answer(key, preflight, now + ttl)
        return preflight

    def forget(self, namespace: str, name: str) -> None:
        self._answers.pop(f"{namespace}/{name}", None)

    def _ask(self, uri: str, account: str | None) -> Preflight:
        try:
            return look(self._client(account), uri)
        except Exception as exc:  # api_core, google.auth and requests errors
            return judge(uri, exc, as_pods=account)

    def _client(self, account: str | None) -> Client:
        client = self._clients.get(account)
        if client is None:
            client = self._clients[account] = self._open(account)
        return client

    def _open(self, account: str | None) -> Client:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        if self._endpoint is not None:
            return storage.Client(
                project="memoserve-dev",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": self._endpoint},
            )
        credentials, project = _default_credentials()
        if account is not None:
            from google.auth import impersonated_credentials

            credentials = impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
                source_credentials=credentials,
                target_principal=account,
                target_scopes=[READ_ONLY_SCOPE],
            )
        return storage.Client(project=project, credentials=credentials)


def _default_credentials() -> tuple[Any, str | None]:
    """Application Default Credentials (Workload Identity on GKE); an error when there are
    none, never anonymous access."""
    import google.auth

    return google.auth.default(scopes=[READ_ONLY_SCOPE])
