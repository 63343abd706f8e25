"""The InferenceService resource: pydantic models of its spec and status.

camelCase on the wire, snake_case in Python. These models are the one source of truth: the CRD
schema in ``crds/`` is generated from them (``memoserve_operator.crd``), including the CEL rules
(``x-kubernetes-validations``) attached to each model below. An InferenceService is parsed once,
at the boundary (``InferenceService.from_body``); everything past it works on typed objects.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from memoserve_contract.resource.cache import CacheSource, CacheSpec
from memoserve_contract.resource.fields import NAME_PATTERN, Quantity, SpecModel, rules
from memoserve_contract.resource.ingress import IngressSpec
from memoserve_contract.resource.status import InferenceServiceStatus
from memoserve_contract.settings import ModelFormat

GROUP = "serving.memoserve.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceService"
PLURAL = "inferenceservices"
SINGULAR = "inferenceservice"
SHORT_NAME = "misvc"  # not KServe's "isvc": both can live on one cluster

NAME_MAX_LENGTH = 63
V2_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a path segment of /v2/models/{name}


ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"  # what a container's env[].name may be


class EnvVarSpec(SpecModel):
    """One environment variable of model.server's container (plain values only)."""

    name: str = Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)
    value: str = Field(default="", max_length=32768)


class ModelServerSpec(SpecModel):
    """Any Open Inference Protocol (v2) REST server as the model tier (Triton, MLServer, a KServe
    runtime), behind the cache front: its container, as the model Deployment runs it."""

    image: str = Field(min_length=1, max_length=512, description="the server's image")
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=64, description="the container's command (default: the image's)"
    )
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=256, description="the container's args"
    )
    port: int = Field(default=8080, ge=1, le=65535, description="its v2 REST port")
    readiness_path: str = Field(
        default="/v2/health/ready",
        max_length=1024,
        pattern=r"^/",
        description="HTTP GET path that answers 200 once the model is loaded",
    )
    model_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=V2_NAME_PATTERN,
        description="the model's v2 name in that server (default: spec.model.name or "
        "metadata.name)",
    )
    env: list[EnvVarSpec] = Field(default_factory=list, max_length=64)


class ModelSpec(SpecModel):
    """The model to serve."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                r"self.uri.matches('^(gs://[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9](/.*)?|/.+)$')",
                "spec.model.uri must be gs://BUCKET[/PATH] or an absolute local path (starting "
                "with /)",
                ".uri",
            ),
            (
                "has(self.format) || has(self.server)",
                "spec.model.format (onnx, sklearn or xgboost) is required unless "
                "spec.model.server is given",
                ".format",
            ),
            (
                "!has(self.format) || !has(self.server)",
                "spec.model.format names the built-in runtime: omit it with spec.model.server",
                ".format",
            ),
        )
    )

    uri: str = Field(
        min_length=1,
        max_length=1024,
        description="gs://bucket/prefix (or a file), or an absolute path inside the image",
    )
    format: ModelFormat | None = Field(
        default=None, description="onnx, sklearn or xgboost: the built-in runtime"
    )
    name: str | None = Field(
        default=None,
        max_length=63,
        pattern=V2_NAME_PATTERN,
        description="v2 model name (/v2/models/{name}); defaults to metadata.name",
    )
    version: str | None = Field(
        default=None, max_length=63, pattern=V2_NAME_PATTERN, description="v2 model version"
    )
    server: ModelServerSpec | None = Field(
        default=None,
        description="a v2 server's container as the model tier instead of the built-in runtime "
        "(needs front.enabled)",
    )


class GpuType(enum.StrEnum):
    """GKE accelerator names (the node label cloud.google.com/gke-accelerator)."""

    NVIDIA_L4 = "nvidia-l4"
    NVIDIA_TESLA_T4 = "nvidia-tesla-t4"
    NVIDIA_TESLA_P4 = "nvidia-tesla-p4"
    NVIDIA_TESLA_P100 = "nvidia-tesla-p100"
    NVIDIA_TESLA_V100 = "nvidia-tesla-v100"
    NVIDIA_TESLA_A100 = "nvidia-tesla-a100"
    NVIDIA_A100_80GB = "nvidia-a100-80gb"
    NVIDIA_H100_80GB = "nvidia-h100-80gb"
    NVIDIA_H100_MEGA_80GB = "nvidia-h100-mega-80gb"
    NVIDIA_H200_141GB = "nvidia-h200-141gb"
    NVIDIA_B200 = "nvidia-b200"
    NVIDIA_RTX_PRO_6000 = "nvidia-rtx-pro-6000"


class GpuSpec(SpecModel):
    """GPUs per pod. No spec.gpu means CPU pods."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            ("has(self.type)", "spec.gpu.count needs spec.gpu.type (e.g. nvidia-l4)", ".type"),
        )
    )

    type: GpuType | None = Field(default=None, description="GKE accelerator type")
    count: int = Field(default=1, ge=1, le=16, description="GPUs per pod (nvidia.com/gpu)")


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


class FrontSpec(SpecModel):
    """The cache front (docs/front.md): the cache in a CPU-only Deployment of its own (NAME),
    the model in another (NAME-model, on the GPUs); clients, the Service and the Ingress reach
    the front. spec.minReplicas, maxReplicas, replicas, autoscaling, gpu and resources are the
    model tier's."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                "spec.front.minReplicas must be <= spec.front.maxReplicas",
                ".maxReplicas",
            ),
        )
    )

    enabled: bool = Field(default=False, description="split the cache front from the model")
    min_replicas: int = Field(default=1, ge=1, le=1000, description="fewest front pods")
    max_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="most front pods; > minReplicas: an HPA on CPU"
    )
    target_cpu_utilization: int | None = Field(
        default=None,
        ge=1,
        le=100,
        alias="targetCPUUtilization",
        description="the front HPA's average CPU utilisation (% of requests); default: the "
        "operator's",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="server processes per front pod; default: the CPU request, rounded up",
    )
    resources: ResourcesSpec | None = Field(
        default=None, description="the front container's; merged over the operator's defaults"
    )
    max_queued_misses: int | None = Field(
        default=None,
        ge=0,
        le=100000,
        description="misses waiting for the model tier, per worker; past this 503 + Retry-After",
    )

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas is not None and self.max_replicas > self.min_replicas


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
    grpc: GrpcSpec | None = Field(default=None, description="unset: REST only")
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
    def grpc_enabled(self) -> bool:
        return self.grpc is not None and self.grpc.enabled

    @property
    def grpc_through_ingress(self) -> bool:
        """gRPC through the load balancer: the pods serve it over TLS as well."""
        return self.grpc_enabled and self.ingress_enabled

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
