"""status of an InferenceService: what the operator writes and ``kubectl get`` shows.

The handlers own the values; this module owns the shape (the CRD's status schema is generated
from it). Unknown fields are ignored on read so that an older operator can read a newer status.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ConditionType(enum.StrEnum):
    READY = "Ready"
    SERVING_READY = "ServingReady"
    MODEL_READY = "ModelReady"
    CACHE_READY = "CacheReady"
    INGRESS_READY = "IngressReady"
    AUTOSCALING_READY = "AutoscalingReady"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class StatusModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
    )


class Condition(StatusModel):
    """A metav1.Condition: lastTransitionTime changes only when status changes."""

    type: str = Field(min_length=1, max_length=316, description="Ready, ServingReady, ...")
    status: ConditionStatus
    reason: str = Field(default="", max_length=1024, description="CamelCase, machine-readable")
    message: str = Field(default="", max_length=32768, description="for humans")
    last_transition_time: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(default=None, ge=0)


class CacheStatus(StatusModel):
    """The Redis behind the service, as the operator last saw it."""

    source: str | None = Field(default=None, description="external | memorystore | ...")
    name: str | None = Field(default=None, description="Memorystore instance name")
    host: str | None = None
    port: int | None = None
    state: str | None = Field(default=None, description="READY, CREATING, ... (CACHE column)")
    operation: str | None = Field(default=None, description="pending long-running operation")
    message: str | None = None
    hit_ratio: str | None = Field(
        default=None,
        description="answers from the cache per request over the last minutes, e.g. 87% "
        "(the HIT% column); unset while unknown",
    )


class InferenceServiceStatus(StatusModel):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    url: str | None = Field(default=None, description="where clients send requests")
    replicas: int | None = Field(default=None, ge=0, description="pods (the scale subresource)")
    ready_replicas: int | None = Field(default=None, ge=0)
    replica_summary: str | None = Field(
        default=None, description='"ready/desired" for the REPLICAS column'
    )
    selector: str | None = Field(
        default=None, description="label selector of the pods (the scale subresource)"
    )
    cache: CacheStatus | None = None
    model_digest: str | None = Field(
        default=None, description="digest of the model files the serving pods loaded"
    )

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
