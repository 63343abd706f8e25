"""Private Service Connect, as far as a create depends on it: Memorystore for Valkey and
Memorystore for Redis Cluster make their endpoints through service connectivity automation,
which needs a service connection policy for the service class in the network's region.

Without one, Google accepts the create and the operation ends in FAILED_PRECONDITION
("Invalid resource state for ...: No service connection policy is associated with ...").
The emulator keeps the declared policies (``--service-connection-policy NETWORK:CLASS:REGION``);
with ``allow_any_network`` (the default) every network has every policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memoserve_dev.memorystore_emulator.faults import Fault

VALKEY_SERVICE_CLASS = "gcp-memorystore"
REDIS_CLUSTER_SERVICE_CLASS = "gcp-memorystore-redis"


def network_path(network: str, project: str) -> str:
    """``projects/P/global/networks/N`` from a bare name (in ``project``) or that path."""
    return network if "/" in network else f"projects/{project}/global/networks/{network}"


def _same_network(declared: str, network: str) -> bool:
    # A bare declared name matches that network in any project.
    return declared == network if "/" in declared else network.rsplit("/", 1)[-1] == declared


@dataclass
class ServiceConnectionPolicies:
    allow_any_network: bool = True
    policies: set[tuple[str, str, str]] = field(default_factory=set)  # network, class, region

    def declare(self, network: str, service_class: str, region: str) -> None:
        self.policies.add((network, service_class, region))

    def declare_spec(self, spec: str) -> None:
        """``NETWORK:CLASS:REGION`` (NETWORK a name or projects/P/global/networks/N)."""
        parts = spec.rsplit(":", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{spec!r}: want NETWORK:SERVICE_CLASS:REGION")
        network, service_class, region = parts
        self.declare(network, service_class, region)

    def covers(self, network: str, service_class: str, region: str) -> bool:
        return self.allow_any_network or any(
            _same_network(n, network) and c == service_class and r == region
            for n, c, r in self.policies
        )

    def check(
        self, resource: str, project: str, networks: list[str], service_class: str, region: str
    ) -> Fault | None:
        """The failure of a create of ``resource`` on these networks, if a policy is missing."""
        for network in networks:
            if not self.covers(network, service_class, region):
                return Fault(
                    "FAILED_PRECONDITION",
                    f'Invalid resource state for "{resource}": No service connection policy is '
                    f"associated with project: {project}, network: {network}, service class: "
                    f"{service_class}, region: {region}",
                )
        return None
