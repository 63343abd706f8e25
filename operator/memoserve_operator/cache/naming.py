"""Where an operator-created instance lives and whose it is (pure; the same for every engine).

- ``instance_id``: deterministic and valid for all three APIs (lowercase, starts with a
  letter, at most 40 characters): ``NAMESPACE-NAME``, shortened with a hash of both when too
  long. The same service always gets the same ID: that is how an operator restarted mid-create
  finds the instance instead of creating a second one.
- ``owner_labels`` / ``not_owned``: GCP labels naming the InferenceService; an instance is
  adopted only when they match (Redis Cluster has no labels: see ``sharded.engine``).
- ``location``: project and region from the spec, the operator's settings or the credentials.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.meta import MANAGED_BY
from memoserve_operator.settings import OperatorSettings

MAX_ID_LENGTH = 40
ID_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")

MANAGED_BY_LABEL = "managed-by"
NAMESPACE_LABEL = "memoserve-namespace"
NAME_LABEL = "memoserve-name"
UID_LABEL = "memoserve-uid"


class Labelled(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...


def instance_id(namespace: str, name: str) -> str:
    """``NAMESPACE-NAME``; with a hash of both instead of the tail when that is too long."""
    base = f"{namespace}-{name}"
    if not base[0].isalpha():
        base = f"ms-{base}"  # namespaces may start with a digit
    if len(base) <= MAX_ID_LENGTH:
        return base
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]
    return f"{base[: MAX_ID_LENGTH - len(digest) - 1].rstrip('-')}-{digest}"


def owner_labels(isvc: InferenceService) -> dict[str, str]:
    """GCP labels naming the InferenceService that owns an instance (all valid label values:
    Kubernetes names and uids are lowercase letters, digits and dashes, at most 63 long)."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        NAMESPACE_LABEL: isvc.namespace,
        NAME_LABEL: isvc.name,
        UID_LABEL: isvc.metadata.uid or "",
    }


def not_owned(instance: Labelled, uid: str | None) -> str | None:
    """Why ``instance`` is not the InferenceService ``uid``'s to manage (None when it is)."""
    labels = instance.labels
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return (
            f"{instance.name} exists and was not created by memoserve (no label "
            f"{MANAGED_BY_LABEL}={MANAGED_BY}); memoserve never touches it"
        )
    owner = f"{labels.get(NAMESPACE_LABEL)}/{labels.get(NAME_LABEL)}"
    if not uid or labels.get(UID_LABEL) != uid:
        return (
            f"{instance.name} belongs to InferenceService {owner} with uid "
            f"{labels.get(UID_LABEL)} (e.g. one deleted with deletionPolicy Retain); delete the "
            f"instance, or set its label {UID_LABEL}={uid} to adopt it"
        )
    return None


@dataclass(frozen=True)
class Location:
    project: str
    region: str
    collection: str = "instances"  # Redis Cluster: "clusters"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def instance_name(self, instance: str) -> str:
        return f"{self.parent}/{self.collection}/{instance}"


def location(
    project: str | None,
    region: str | None,
    zone: str | None,
    settings: OperatorSettings,
    default_project: str | None,
    *,
    field: str = "spec.cache.memorystore",
    collection: str = "instances",
) -> Location | str:
    """Where the instance lives, or what is missing to know it. ``field``: the spec's part, for
    the message."""
    project = project or settings.gcp_project or default_project
    region = region or settings.gcp_region
    if region is None and zone:
        region = zone.rsplit("-", 1)[0]  # us-central1-a -> us-central1
    if project is None:
        return f"no Google Cloud project: set MEMOSERVE_OPERATOR_GCP_PROJECT (or {field}.project)"
    if region is None:
        return f"no region: set MEMOSERVE_OPERATOR_GCP_REGION or {field}.region"
    return Location(project, region, collection)


def existing_name(name: str, where: Location) -> str:
    """A full instance name from an existing* source's name (an ID, or already full)."""
    return name if name.startswith("projects/") else where.instance_name(name)


def network(spec_network: str | None, project: str) -> str:
    """A network's full name from a name in the project (or "" for the service's default)."""
    if not spec_network or "/" in spec_network:
        return spec_network or ""
    return f"projects/{project}/global/networks/{spec_network}"


def region_of(name: str) -> str:
    """projects/P/locations/REGION/... -> REGION ("" for anything else)."""
    parts = name.split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "locations" else ""
