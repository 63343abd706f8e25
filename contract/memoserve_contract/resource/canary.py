"""spec.canary: a second model version beside spec.model, taking a share of the traffic.

The canary runs in a Deployment of its own (NAME-canary) with the stable pods' settings but its
own model and replica bounds; a route that can weight traffic (the Gateway API's HTTPRoute)
sends it ``trafficPercent`` of the requests. Its answers are cached under its own model digest,
so the two versions never serve each other's answers. Promotion moves canary.model into
spec.model and removes spec.canary; rollback removes spec.canary (docs/inferenceservice.md).
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from memoserve_contract.resource.fields import SpecModel, rules
from memoserve_contract.resource.model import ModelSpec


class CanarySpec(SpecModel):
    """The model version on trial and the share of requests it answers."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                "self.trafficPercent >= 0 && self.trafficPercent <= 100",
                "spec.canary.trafficPercent must be between 0 and 100 (percent of requests the "
                "canary answers)",
                ".trafficPercent",
            ),
            (
                "!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                "spec.canary.minReplicas must be <= spec.canary.maxReplicas",
                ".maxReplicas",
            ),
            (
                "!has(self.model.name)",
                "spec.canary.model.name must be unset: the canary answers under spec.model's "
                "name, so that clients' URLs do not change",
                ".model.name",
            ),
            (
                "!has(self.model.server)",
                "spec.canary.model.server is not supported: a model server needs spec.front, "
                "which a canary service cannot have; canary the built-in runtime "
                "(spec.canary.model.format)",
                ".model.server",
            ),
        )
    )

    model: ModelSpec = Field(description="the new version: uri, format and version")
    traffic_percent: int = Field(
        description="percent of requests (0-100) the route sends to the canary; 0: its pods run "
        "but answer only requests sent to NAME-canary directly"
    )
    min_replicas: int = Field(default=1, ge=1, le=1000, description="fewest canary pods")
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="most canary pods; > minReplicas: an HPA with spec.autoscaling's targets",
    )

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas is not None and self.max_replicas > self.min_replicas
