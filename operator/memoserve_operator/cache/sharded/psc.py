"""A create refused for want of a service connection policy (pure).

Memorystore for Valkey and for Redis Cluster connect to the VPC by Private Service Connect,
with endpoints that service connectivity automation creates: it needs a service connection
policy for the instance's network, region and service class (``gcp-memorystore`` for Valkey,
``gcp-memorystore-redis`` for Redis Cluster). Without one the create fails, at once or in its
operation, with a message like "No service connection policy is associated with
project/network/region" (the text reported by people who hit it). Recognised by the code and
that phrase, case-insensitively; the emulator (``memoserve dev memorystore-emulator``) answers
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from memoserve_operator.cache.gcp import MemorystoreError
from memoserve_operator.cache.verdicts import CACHE, POLICY_MISSING
from memoserve_operator.verdict import Verdict

CODES = frozenset({"FAILED_PRECONDITION", "INVALID_ARGUMENT", "NOT_FOUND"})
PHRASE = "no service connection policy"


@dataclass(frozen=True)
class Where:
    network: str  # full name, or "" for the project's default network
    service_class: str
    region: str


def policy_missing(exc: MemorystoreError) -> bool:
    return exc.code in CODES and PHRASE in exc.message.lower()


def command(where: Where, project: str) -> str:
    network = where.network.rsplit("/", 1)[-1] or "default"
    return (
        "gcloud network-connectivity service-connection-policies create "
        f"memoserve-{where.service_class} --project={project} --region={where.region} "
        f"--network={network} --service-class={where.service_class} --subnets=SUBNET"
    )


def verdict(exc: MemorystoreError, where: Where, project: str) -> Verdict:
    network = where.network or f"projects/{project}/global/networks/default"
    message = (
        f"no service connection policy for service class {where.service_class} in network "
        f"{network}, region {where.region}: Memorystore cannot create the Private Service "
        f"Connect endpoints. Create one (a subnet of that network in {where.region} for the "
        f"endpoints), e.g. `{command(where, project)}`; the operator tries again by itself. "
        f"Google said {exc.code}: {exc.message}"
    )
    return Verdict.false(CACHE, POLICY_MISSING, message)
