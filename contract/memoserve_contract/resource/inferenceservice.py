"""The InferenceService resource: pydantic models of its spec and status.

camelCase on the wire, snake_case in Python. These models are the one source of truth: the CRD
schema in ``crds/`` is generated from them (``memoserve_operator.crd``), including the CEL rules
(``x-kubernetes-validations``) attached to each model. The spec's parts live in modules of
their own (model, gpu, pods, front, cache, ingress); this one puts them together. An
InferenceService is parsed once, at the boundary (``InferenceService.from_body``); everything
past it works on typed objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from memoserve_contract.resource.cache import CacheSource, CacheSpec
from memoserve_contract.resource.canary import CanarySpec
from memoserve_contract.resource.fields import NAME_PATTERN, SpecModel, rules
from memoserve_contract.resource.front import FrontSpec
from memoserve_contract.resource.gateway import GatewaySpec
from memoserve_contract.resource.gpu import GpuSpec
from memoserve_contract.resource.ingress import IngressSpec
from memoserve_contract.resource.model import ModelSpec
from memoserve_contract.resource.names import NAME_MAX_LENGTH
from memoserve_contract.resource.pods import (
    AutoscalingSpec,
    BatchingSpec,
    GrpcSpec,
    NetworkPolicySpec,
    ResourcesSpec,
    ServiceAccountSpec,
    TransportsSpec,
)
from memoserve_contract.resource.status import InferenceServiceStatus
from memoserve_contract.resource.tracing import TracingSpec


class InferenceServiceSpec(SpecModel):
    """What to serve and how."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                "spec.minReplicas must be <= spec.maxReplicas",
                ".maxReplicas",
            ),
            (
                "!has(self.replicas) || !has(self.maxReplicas)"
                " || self.maxReplicas == self.minReplicas",
                "spec.replicas (what kubectl scale sets) applies only when autoscaling is off "
                "(maxReplicas unset or equal to minReplicas)",
                ".replicas",
            ),
            (
                "!has(self.resources)"
                " || ((!has(self.resources.limits) || !('nvidia.com/gpu' in self.resources.limits))"
                " && (!has(self.resources.requests)"
                " || !('nvidia.com/gpu' in self.resources.requests)))",
                "request GPUs with spec.gpu (type and count), not spec.resources",
                ".resources",
            ),
            (
                "!has(self.model.server) || (has(self.front) && self.front.enabled)",
                "spec.model.server needs spec.front.enabled: true (an external server has no "
                "cache of its own)",
                ".model.server",
            ),
            (
                "!has(self.canary) || !has(self.front) || !self.front.enabled",
                "spec.canary is not supported with spec.front.enabled: a split service's cache "
                "front would need a front of its own per version (docs/inferenceservice.md)",
                ".canary",
            ),
            (
                "!has(self.canary) || !has(self.ingress) || !self.ingress.enabled",
                "spec.canary cannot go with spec.ingress.enabled: a GKE Ingress cannot weight "
                "traffic between two Services; expose the service with spec.gateway (an "
                "HTTPRoute weights them)",
                ".canary",
            ),
            (
                "!has(self.gateway) || !has(self.ingress) || !self.ingress.enabled",
                "set spec.gateway or spec.ingress (enabled), not both: a service is exposed "
                "through one of them",
                ".gateway",
            ),
        )
    )

    model: ModelSpec
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="fixed replica count when autoscaling is off (the scale subresource)",
    )
    min_replicas: int = Field(default=1, ge=1, le=1000, description="fewest pods")
    max_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="most pods; > minReplicas turns the HPA on"
    )
    autoscaling: AutoscalingSpec | None = None
    gpu: GpuSpec | None = Field(default=None, description="GPUs per pod; unset: CPU pods")
    resources: ResourcesSpec | None = None
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="serving image; default: the operator's (CUDA variant for GPU pods)",
    )
    batching: BatchingSpec | None = None
    cache: CacheSpec | None = Field(default=None, description="no cache: every request runs")
    ingress: IngressSpec | None = None
    gateway: GatewaySpec | None = Field(
        default=None, description="expose through the Gateway API (docs/gke.md); unset: not"
    )
    grpc: GrpcSpec | None = Field(default=None, description="unset: REST only")
    transports: TransportsSpec | None = Field(
        default=None, description="the HTTP and gRPC servers of every memoserve process"
    )
    service_account: ServiceAccountSpec | None = None
    network_policy: NetworkPolicySpec | None = Field(
        default=None, description="unset: a NetworkPolicy with the defaults; enabled: false: none"
    )
    drain_seconds: int | None = Field(
        default=None, ge=0, le=600, description="after SIGTERM: not-ready this long, then stop"
    )
    front: FrontSpec | None = Field(
        default=None,
        description="the cache front tier (docs/front.md); unset or enabled: false: one tier",
    )
    tracing: TracingSpec | None = Field(
        default=None, description="OpenTelemetry traces (docs/tracing.md); unset: the operator's"
    )
    canary: CanarySpec | None = Field(
        default=None,
        description="a second model version taking canary.trafficPercent of the requests "
        "(NAME-canary); promote: move canary.model into model and remove canary",
    )

    @property
    def split(self) -> bool:
        """The cache front and the model run in Deployments of their own."""
        return self.front is not None and self.front.enabled

    @property
    def autoscaled(self) -> bool:
        """An HPA owns the replica count."""
        return self.max_replicas is not None and self.max_replicas > self.min_replicas

    @property
    def fixed_replicas(self) -> int:
        """The replica count when not autoscaled: what kubectl scale set, else minReplicas."""
        return self.replicas if self.replicas is not None else self.min_replicas

    @property
    def ingress_enabled(self) -> bool:
        """A load balancer in front of the pods."""
        return self.ingress is not None and self.ingress.enabled

    @property
    def gateway_enabled(self) -> bool:
        """An HTTPRoute (and maybe a Gateway) in front of the pods."""
        return self.gateway is not None

    @property
    def grpc_enabled(self) -> bool:
        return self.grpc is not None and self.grpc.enabled

    @property
    def grpc_through_ingress(self) -> bool:
        """gRPC through the load balancer (Ingress or Gateway): the pods serve it over TLS as
        well, HTTP/2 being what Google's load balancers speak to a gRPC backend."""
        return self.grpc_enabled and (self.ingress_enabled or self.gateway_enabled)

    @property
    def wants_managed_certificate(self) -> bool:
        """The operator creates one only when asked to (not for managedCertificateName)."""
        ingress = self.ingress
        return ingress is not None and ingress.enabled and ingress.managed_certificate

    @property
    def network_policy_enabled(self) -> bool:
        return self.network_policy is None or self.network_policy.enabled

    @property
    def cache_source(self) -> CacheSource | None:
        """Which Redis serves the pods' cache; None: no cache (unset or disabled)."""
        return self.cache.source if self.cache is not None else None


class ObjectMeta(BaseModel):
    """The part of metadata the operator reads."""

    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class InferenceService(BaseModel):
    """An InferenceService as the API server returns it."""

    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)

    api_version: Literal["serving.memoserve.dev/v1alpha1"] = "serving.memoserve.dev/v1alpha1"
    kind: Literal["InferenceService"] = "InferenceService"
    metadata: ObjectMeta
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> InferenceService:
        """Parse a kopf body (or any mapping) once; raises pydantic.ValidationError."""
        return cls.model_validate(dict(body))

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def model_name(self) -> str:
        """The v2 model name: spec.model.name, defaulting to metadata.name."""
        return self.spec.model.name or self.metadata.name
