"""spec.gateway: the service exposed through the Kubernetes Gateway API (GKE's Gateway controller).

Two ways, one per service: an HTTPRoute attached to a Gateway the platform team runs
(``parentRef``), or a Gateway of its own that the operator creates with a GKE GatewayClass
(``gatewayClassName``, with an optional reserved address and certificate). Beside spec.ingress,
which stays for clusters without the Gateway API; a service uses one or the other.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import ConfigDict, Field

from memoserve_contract.resource.fields import SpecModel, rules

# Gateway API's own patterns (gateway.networking.k8s.io/v1 ObjectName, SectionName, Hostname):
# a DNS subdomain, and a DNS label for namespaces.
SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Hostname = Annotated[str, Field(min_length=1, max_length=253, pattern=SUBDOMAIN_PATTERN)]
ResourceName = Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_PATTERN)]


class GatewayClassName(enum.StrEnum):
    """GKE's single-cluster GatewayClasses (docs/gke.md)."""

    GLOBAL_EXTERNAL = "gke-l7-global-external-managed"  # global external Application LB
    REGIONAL_EXTERNAL = "gke-l7-regional-external-managed"  # regional external Application LB
    REGIONAL_INTERNAL = "gke-l7-rilb"  # regional internal Application LB (VPC only)


class ParentRefSpec(SpecModel):
    """The Gateway the service's HTTPRoute attaches to (its listeners must allow the route)."""

    name: str = Field(min_length=1, max_length=253, pattern=SUBDOMAIN_PATTERN)
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_PATTERN,
        description="the Gateway's namespace; default: the InferenceService's",
    )
    section_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=SUBDOMAIN_PATTERN,
        description="one listener of the Gateway (e.g. https); default: every listener",
    )


class GatewayTlsSpec(SpecModel):
    """HTTPS on the operator's Gateway: one source of certificates."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "[has(self.secretName), has(self.preSharedCertificates),"
                " has(self.certificateMap)].filter(x, x).size() == 1",
                "spec.gateway.tls needs exactly one of secretName, preSharedCertificates, "
                "certificateMap",
                "",
            ),
        )
    )

    secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=SUBDOMAIN_PATTERN,
        description="a kubernetes.io/tls Secret in the service's namespace",
    )
    pre_shared_certificates: list[ResourceName] | None = Field(
        default=None,
        min_length=1,
        max_length=15,
        description="Compute Engine SSL certificates (networking.gke.io/pre-shared-certs)",
    )
    certificate_map: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_PATTERN,
        description="a Certificate Manager map (networking.gke.io/certmap; global class only)",
    )


class GatewaySpec(SpecModel):
    """The service behind the Gateway API: an HTTPRoute, and with gatewayClassName a Gateway."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "has(self.parentRef) != has(self.gatewayClassName)",
                "spec.gateway needs exactly one of parentRef (an existing Gateway) or "
                "gatewayClassName (a Gateway of the service's own)",
                "",
            ),
            (
                "has(self.gatewayClassName) || (!has(self.addressName) && !has(self.tls))",
                "spec.gateway.addressName and tls apply only to a Gateway of the service's own "
                "(gatewayClassName); a shared Gateway's are its owner's",
                "",
            ),
            (
                "!has(self.tls) || !has(self.tls.certificateMap)"
                " || self.gatewayClassName == 'gke-l7-global-external-managed'",
                "spec.gateway.tls.certificateMap works only with gatewayClassName "
                "gke-l7-global-external-managed",
                ".tls",
            ),
        )
    )

    parent_ref: ParentRefSpec | None = Field(
        default=None, description="attach to this existing Gateway"
    )
    gateway_class_name: GatewayClassName | None = Field(
        default=None,
        description="create a Gateway for this service with this GKE GatewayClass",
    )
    address_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_PATTERN,
        description="a reserved static IP address's name (global for the global class, "
        "regional otherwise)",
    )
    tls: GatewayTlsSpec | None = Field(
        default=None, description="HTTPS on port 443 of the service's Gateway"
    )
    hostnames: list[Hostname] = Field(
        default_factory=list,
        max_length=16,
        description="host names the route answers for (no wildcards); the first one makes "
        "status.url; none: any",
    )
    path: str = Field(default="/", max_length=1024, pattern=r"^/", description="path prefix")

    @property
    def owns_gateway(self) -> bool:
        """The operator creates a Gateway for the service (no parentRef)."""
        return self.gateway_class_name is not None
