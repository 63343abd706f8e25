"""spec.ingress: a Google Cloud Application Load Balancer in front of an InferenceService."""

from __future__ import annotations

import enum

from pydantic import ConfigDict, Field

from memoserve_contract.resource.fields import NAME_PATTERN, SpecModel, rules


class IngressClass(enum.StrEnum):
    GCE = "gce"  # external Application Load Balancer
    GCE_INTERNAL = "gce-internal"  # internal Application Load Balancer (VPC only)


class IngressSpec(SpecModel):
    """A Google Cloud load balancer in front of the service (GKE Ingress)."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "!self.managedCertificate || has(self.host)",
                "spec.ingress.host is required for a managed certificate",
                ".host",
            ),
            (
                "!self.managedCertificate || !has(self.managedCertificateName)",
                "set spec.ingress.managedCertificate or managedCertificateName, not both",
                ".managedCertificateName",
            ),
            (
                "!(self.managedCertificate || has(self.managedCertificateName))"
                " || self.className == 'gce'",
                "Google-managed certificates work only with className gce (external load balancer)",
                ".className",
            ),
        )
    )

    enabled: bool = False
    class_name: IngressClass = Field(default=IngressClass.GCE, description="gce | gce-internal")
    host: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description="DNS name the load balancer answers for (no wildcards)",
    )
    static_ip_name: str | None = Field(
        default=None,
        alias="staticIPName",
        max_length=63,
        pattern=NAME_PATTERN,
        description="reserved address name: global for gce, regional for gce-internal",
    )
    managed_certificate: bool = Field(
        default=False, description="create a Google-managed certificate for host (HTTPS)"
    )
    managed_certificate_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=NAME_PATTERN,
        description="attach an existing ManagedCertificate instead",
    )
    path: str = Field(default="/", max_length=256, pattern=r"^/", description="path prefix")
