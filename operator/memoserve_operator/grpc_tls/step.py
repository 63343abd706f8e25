"""The gRPC TLS step: the key and certificate the ``<name>-grpc-tls`` Secret should hold.

A key is made once and kept: read back from the Secret (after an operator restart), else from
memory, and replaced only when it no longer fits (``certificate.still_good``: expiring, other
names, unreadable). So the desired Secret is the same on every reconcile and steady state
makes no write; a replaced certificate changes the pods' config checksum and rolls them.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.grpc_tls import (
    CERT_KEY,
    KEY_KEY,
    TlsMaterial,
    grpc_tls_secret_name,
)
from memoserve_operator.grpc_tls.certificate import make_certificate, still_good
from memoserve_operator.kube.client import KubeClient, resource_of

SECRET = resource_of("v1", "Secret")


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class GrpcTlsStep:
    """Lives in kopf's memo (through the reconciler); one entry per service with gRPC TLS."""

    def __init__(
        self, kube: KubeClient, *, clock: Callable[[], datetime.datetime] = _utcnow
    ) -> None:
        self._kube, self._clock = kube, clock
        self._known: dict[str, TlsMaterial] = {}

    async def material(self, isvc: InferenceService) -> TlsMaterial:
        key, now = f"{isvc.namespace}/{isvc.name}", self._clock()
        known = self._known.get(key)
        if known is None or not still_good(known, isvc.namespace, isvc.name, now):
            known = await self._stored(isvc)
            if known is None or not still_good(known, isvc.namespace, isvc.name, now):
                known = make_certificate(isvc.namespace, isvc.name, now)
            self._known[key] = known
        return known

    def forget(self, namespace: str, name: str) -> None:
        self._known.pop(f"{namespace}/{name}", None)

    async def _stored(self, isvc: InferenceService) -> TlsMaterial | None:
        secret = await self._kube.get(SECRET, isvc.namespace, grpc_tls_secret_name(isvc))
        data = (secret or {}).get("data") or {}
        try:
            return TlsMaterial(
                base64.b64decode(data[CERT_KEY]).decode(), base64.b64decode(data[KEY_KEY]).decode()
            )
        except (KeyError, ValueError):
            return None
