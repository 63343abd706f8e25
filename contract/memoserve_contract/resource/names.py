"""The resource's names: its API group, version and kind, and the annotation and finalizer keys
the operator writes, all built from GROUP in this one place."""

from __future__ import annotations

GROUP = "serving.memoserve.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceService"
PLURAL = "inferenceservices"
SINGULAR = "inferenceservice"
SHORT_NAME = "misvc"  # not KServe's "isvc": both can live on one cluster

NAME_MAX_LENGTH = 63


def qualified(key: str) -> str:
    """An annotation, label or finalizer key in the resource's group: GROUP/key."""
    return f"{GROUP}/{key}"
