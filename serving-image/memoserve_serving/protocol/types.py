"""The v2 inference request and response, decoded: no HTTP and no JSON in here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Parameters = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Tensor:
    """One named tensor. ``data`` has ``shape``; BYTES tensors hold ``bytes`` in an object array."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray[Any, Any]
    # Parameters that may change the answer; transport-only ones (binary_data_size) are dropped.
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool | None = None  # binary_data parameter; None = request default
    parameters: Parameters = field(default_factory=dict)  # without binary_data


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    id: str | None
    inputs: tuple[Tensor, ...]
    outputs: tuple[RequestedOutput, ...] = ()  # empty: every output of the model
    parameters: Parameters = field(default_factory=dict)  # without transport-only ones
    binary_outputs: bool = False  # request parameter binary_data_output


@dataclass(frozen=True, slots=True)
class InferenceResponse:
    model_name: str
    model_version: str | None
    id: str | None
    outputs: tuple[Tensor, ...]
    parameters: Parameters = field(default_factory=dict)
    # The outputs already encoded as a JSON array (a cache hit); then ``outputs`` may be empty
    # unless the request asked for binary outputs.
    outputs_json: bytes | None = None
