"""spec.gpu: the GKE accelerator and how many per pod."""

from __future__ import annotations

import enum

from pydantic import ConfigDict, Field

from memoserve_contract.resource.fields import SpecModel, rules


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
