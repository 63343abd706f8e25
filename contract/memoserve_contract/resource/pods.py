"""How the serving pods run: autoscaling targets, resources, batching, identity, network policy,
the gRPC API and the servers behind both APIs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from memoserve_contract.resource.fields import Quantity, SpecModel
from memoserve_contract.settings import GrpcTransport, HttpTransport


class AutoscalingSpec(SpecModel):
    """HPA targets, used when maxReplicas > minReplicas (CPU 80% when none is given)."""

    target_cpu_utilization: int | None = Field(
        default=None,
        ge=1,
        le=100,
        alias="targetCPUUtilization",
        description="average CPU utilisation (% of requests) to scale at",
    )
    target_inflight_requests_per_pod: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description="average in-flight requests per pod to scale at: the Pods metric "
        "memoserve_inflight_requests; with spec.model.server, the External metric of the front "
        "pods' memoserve_upstream_inflight_requests (summed) per model pod. Needs a metrics "
        "adapter",
    )


class ResourcesSpec(SpecModel):
    """Container resources; merged over the operator's defaults key by key."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=16)
    limits: dict[str, Quantity] | None = Field(default=None, max_length=16)


class BatchingSpec(SpecModel):
    """Dynamic batching of cache misses (unset = the serving image's defaults)."""

    max_batch_size: int | None = Field(default=None, ge=1, le=4096, description="1 = off")
    max_wait_ms: float | None = Field(default=None, ge=0, le=1000)


class TransportsSpec(SpecModel):
    """The servers every memoserve process of the service runs its APIs on (unset: the image's):
    the native ones by default, each with its fallback kept for a rollout that needs it
    (docs/performance.md measures each pair side by side)."""

    http: HttpTransport | None = Field(
        default=None,
        description="granian (HTTP/1.1 in Rust; the image's default) or uvicorn (the fallback)",
    )
    grpc: GrpcTransport | None = Field(
        default=None,
        description="native (pygrpc-native; the image's default) or aio (grpcio's grpc.aio, the "
        "fallback); the TLS port for the load balancer is always aio",
    )


class ServiceAccountSpec(SpecModel):
    """The pods' Kubernetes service account (always created, named after the service)."""

    gcp_service_account: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[^@\s]+@[^@\s]+\.gserviceaccount\.com$",
        description="Google service account the pods act as (Workload Identity)",
    )


# An IPv4 or IPv6 CIDR, as NetworkPolicy ipBlock takes it.
CIDR_PATTERN = r"^([0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}|[0-9a-fA-F:]+/[0-9]{1,3})$"


class NetworkPolicySpec(SpecModel):
    """The serving pods' NetworkPolicy (enforced where the cluster enforces policies, e.g. GKE
    Dataplane V2): ingress to the serving port from the namespace, the load balancer and
    Prometheus; egress to DNS, the metadata server, HTTPS (Google APIs) and the Redis."""

    enabled: bool = True
    ingress_cidrs: list[Annotated[str, Field(pattern=CIDR_PATTERN, max_length=43)]] = Field(
        default_factory=list,
        max_length=32,
        description="more sources for the serving port, e.g. an internal load balancer's "
        "proxy-only subnet",
    )


class GrpcSpec(SpecModel):
    """The v2 gRPC API (inference.GRPCInferenceService): in the cluster in plaintext (h2c) on
    the Service's ``grpc`` port; with the ingress on, through the load balancer too (HTTP/2 to
    the pods over TLS, with a certificate the operator makes)."""

    enabled: bool = False
