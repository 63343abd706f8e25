"""The ManagedCertificate (networking.gke.io/v1): a Google-managed TLS certificate for the host."""

from __future__ import annotations

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import INGRESS, Object, object_meta


def build_managed_certificate(isvc: InferenceService) -> Object:
    ingress = isvc.spec.ingress
    # build_all asks only for an enabled ingress with managedCertificate, which needs a host.
    assert ingress is not None
    assert ingress.host
    return {
        "apiVersion": "networking.gke.io/v1",
        "kind": "ManagedCertificate",
        "metadata": object_meta(isvc, INGRESS),
        "spec": {"domains": [ingress.host]},
    }
