"""The pods' ServiceAccount, bound to a Google service account through Workload Identity."""

from __future__ import annotations

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import SERVING, Object, object_meta

WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"


def build_service_account(isvc: InferenceService) -> Object:
    account = isvc.spec.service_account
    annotations: dict[str, str] = {}
    if account is not None and account.gcp_service_account:
        annotations[WORKLOAD_IDENTITY_ANNOTATION] = account.gcp_service_account
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(isvc, SERVING, annotations=annotations),
        # Workload Identity goes through the GKE metadata server, not a mounted token.
        "automountServiceAccountToken": False,
    }
