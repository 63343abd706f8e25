"""The v2 inference request and response, decoded: no HTTP and no JSON in here.

These are built on every request, so they are plain slotted classes: a frozen dataclass costs
about a microsecond more per instance. Their fields are ``Final``: mypy refuses assignments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from math import prod
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from memoserve_serving.protocol.datatypes import DTYPES
from memoserve_serving.protocol.tensors import bytes_array, fixed_array, frame, unframe

Parameters = Mapping[str, Any]
# Shared by responses without parameters, so it must not be mutable.
NO_PARAMETERS: Parameters = MappingProxyType({})
_new = object.__new__


class Tensor:
    """One named tensor. ``data`` has ``shape``; BYTES tensors hold ``bytes`` in an object array.

    A tensor is built from its array, or (``from_raw``) from its binary tensor data encoding:
    row-major little-endian bytes, BYTES as 4-byte little-endian length + bytes per element. Then
    the array is made on first use of ``data`` (a read-only view of those bytes), so a request
    answered from the cache never builds one.
    """

    __slots__ = ("_data", "_raw", "datatype", "name", "parameters", "shape")

    def __init__(
        self,
        name: str,
        datatype: str,
        shape: tuple[int, ...],
        data: np.ndarray[Any, Any],
        # Parameters that may change the answer; transport-only ones (binary_data_size) are dropped.
        parameters: Parameters | None = None,
    ) -> None:
        self.name: Final = name
        self.datatype: Final = datatype
        self.shape: Final = shape
        self.parameters: Final[Parameters] = {} if parameters is None else parameters
        self._data: np.ndarray[Any, Any] | None = data
        self._raw: Final[bytes | None] = None

    @classmethod
    def from_raw(
        cls,
        name: str,
        datatype: str,
        shape: tuple[int, ...],
        raw: bytes,
        parameters: Parameters | None = None,
    ) -> Tensor:
        """The tensor whose binary tensor data encoding is ``raw`` (which must fit ``shape``)."""
        tensor = _new(cls)
        tensor.name = name  # type: ignore[misc]  # Final: this is the constructor
        tensor.datatype = datatype  # type: ignore[misc]
        tensor.shape = shape  # type: ignore[misc]
        tensor.parameters = {} if parameters is None else parameters  # type: ignore[misc]
        tensor._data = None
        tensor._raw = raw  # type: ignore[misc]
        return tensor

    @property
    def data(self) -> np.ndarray[Any, Any]:
        data = self._data
        if data is None:
            data = self._data = _array(self.datatype, self.shape, self._raw or b"")
        return data

    def raw_bytes(self) -> bytes | memoryview:
        """The binary tensor data encoding (flat, ``len()`` is its size in bytes); no copy when
        the tensor was built from it or its array already is C-contiguous little-endian."""
        raw = self._raw
        if raw is not None:
            return raw
        data = self.data
        if self.datatype == "BYTES":
            return frame(np.asarray(data).ravel().tolist())
        flat = fixed_array(self.datatype, data).reshape(-1)
        try:
            return flat.data.cast("B")
        except ValueError:  # bfloat16: the buffer protocol has no format for it
            return flat.view(np.uint8).data

    def __repr__(self) -> str:
        return (
            f"Tensor(name={self.name!r}, datatype={self.datatype!r}, shape={self.shape!r}, "
            f"data={self.data!r}, parameters={self.parameters!r})"
        )


def _array(datatype: str, shape: tuple[int, ...], raw: bytes) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        return bytes_array(unframe(raw, 0, len(raw), prod(shape)), shape)
    array: np.ndarray[Any, Any] = np.frombuffer(raw, DTYPES[datatype]).reshape(shape)
    return array if array.flags.aligned else array.copy()


@dataclass(slots=True)
class RequestedOutput:
    name: Final[str]
    binary: Final[bool | None] = None  # binary_data parameter; None = request default
    parameters: Final[Parameters] = field(default_factory=dict)  # without binary_data


@dataclass(slots=True)
class InferenceRequest:
    id: Final[str | None]
    inputs: Final[tuple[Tensor, ...]]
    outputs: Final[tuple[RequestedOutput, ...]] = ()  # empty: every output of the model
    parameters: Final[Parameters] = field(default_factory=dict)  # without transport-only ones
    binary_outputs: Final[bool] = False  # request parameter binary_data_output

    @property
    def selects_outputs(self) -> bool:
        """The request names outputs only to pick some of the model's answer (no output asks
        for anything that changes it): the full answer can be cached and the outputs projected
        from it, so asking for some outputs or all of them is one cache entry."""
        return bool(self.outputs) and not any(output.parameters for output in self.outputs)


class InferenceResponse:
    """Built on every request, so a plain slotted class like :class:`Tensor`."""

    __slots__ = (
        "id",
        "model_name",
        "model_version",
        "outputs",
        "outputs_json",
        "packed",
        "parameters",
    )

    def __init__(
        self,
        model_name: str,
        model_version: str | None,
        id: str | None,  # the v2 field's name
        outputs: tuple[Tensor, ...],
        parameters: Parameters = NO_PARAMETERS,
        # The outputs already encoded as a JSON array (a cache hit); then ``outputs`` may be
        # empty unless the request asked for binary outputs.
        outputs_json: bytes | None = None,
        # The cached blob (protocol.blob) that ``outputs`` were unpacked from, on a hit that
        # answers with the whole answer: a transport may keep its encoding of it (grpc/wire.py).
        packed: bytes | None = None,
    ) -> None:
        self.model_name: Final = model_name
        self.model_version: Final = model_version
        self.id: Final = id
        self.outputs: Final = outputs
        self.parameters: Final = parameters
        self.outputs_json: Final = outputs_json
        self.packed: Final = packed

    def __repr__(self) -> str:
        return (
            f"InferenceResponse(model_name={self.model_name!r}, "
            f"model_version={self.model_version!r}, id={self.id!r}, outputs={self.outputs!r}, "
            f"parameters={self.parameters!r}, outputs_json={self.outputs_json!r})"
        )
