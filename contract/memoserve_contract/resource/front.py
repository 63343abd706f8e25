"""spec.front: the cache front, a CPU-only tier of its own in front of the model tier."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from memoserve_contract.resource.fields import SpecModel, rules
from memoserve_contract.resource.pods import ResourcesSpec


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
    max_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="rows one call to the model tier carries at most when misses queue behind "
        "calls in flight (its model must list a variable batch dimension); 1: each miss alone; "
        "default: the image's (32)",
    )
    max_calls_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="calls to the model tier in flight per worker before further misses queue "
        "and go together as one call (maxBatchSize rows at most); default: the image's (1)",
    )

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas is not None and self.max_replicas > self.min_replicas
