"""Tensor data in gRPC messages: typed ``InferTensorContents`` and raw bytes.

Whatever way a tensor travels, it becomes the same binary tensor data encoding the HTTP
decoder makes (``Tensor.from_raw``): the cache key hashes those bytes, so a tensor sent as
JSON, as HTTP binary data, as typed contents or as raw contents is one cache entry. Typed
values go through the JSON codec's packing (``json_to_raw``): the same type and range checks,
the same bytes. Sizes are checked against the declared shape before anything is allocated.
"""

from __future__ import annotations

from math import prod
from typing import Any

from memoserve_serving.grpc.proto.open_inference_grpc_pb2 import InferTensorContents
from memoserve_serving.protocol.tensors import (
    buffer_to_raw,
    fixed_array,
    frame,
    json_to_raw,
)
from memoserve_serving.protocol.types import Parameters, Tensor

# The InferTensorContents field that carries each datatype. FP16 and BF16 have none: they
# travel raw.
FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def from_contents(
    name: str,
    datatype: str,
    shape: tuple[int, ...],
    contents: InferTensorContents,
    parameters: Parameters,
) -> Tensor:
    """The tensor whose typed contents are ``contents``; ValueError for a mismatch."""
    field = FIELDS.get(datatype)
    if field is None:
        raise ValueError(f"{datatype} data has no typed contents field: send raw_input_contents")
    count = prod(shape)
    # Only the datatype's own field may hold values (protobuf lists the non-empty ones).
    present = [descriptor.name for descriptor, _ in contents.ListFields()]
    if any(other != field for other in present):
        others = ", ".join(sorted(set(present) - {field}))
        raise ValueError(f"{datatype} data goes in contents.{field}, not {others}")
    values: list[Any] = list(getattr(contents, field)) if present else []
    if len(values) != count:
        raise ValueError(
            f"contents.{field} has {len(values)} elements, shape {list(shape)} needs {count}"
        )
    raw = frame(values) if datatype == "BYTES" else json_to_raw(datatype, shape, values)
    return Tensor.from_raw(name, datatype, shape, raw, parameters)


def from_raw_contents(
    name: str, datatype: str, shape: tuple[int, ...], raw: bytes, parameters: Parameters
) -> Tensor:
    """The tensor whose ``raw_input_contents`` entry is ``raw``; ValueError unless it fits."""
    # Checks the size (BYTES: the framing) against the shape; no copy of a bytes object.
    raw = buffer_to_raw(datatype, shape, raw, 0, len(raw))
    return Tensor.from_raw(name, datatype, shape, raw, parameters)


def raw_bytes(tensor: Tensor) -> bytes:
    """The tensor as a ``raw_output_contents`` entry."""
    raw = tensor.raw_bytes()
    return raw if type(raw) is bytes else bytes(raw)


def fill_contents(contents: InferTensorContents, tensor: Tensor) -> None:
    """Put ``tensor``'s values in its datatype's typed field (which must exist: see FIELDS)."""
    target = getattr(contents, FIELDS[tensor.datatype])
    if tensor.datatype == "BYTES":
        target.extend(
            element.encode() if isinstance(element, str) else element
            for element in tensor.data.ravel().tolist()
        )
    else:
        target.extend(fixed_array(tensor.datatype, tensor.data).ravel().tolist())
