"""The cache value: a model's output tensors in a compact, versioned binary format.

Layout, all integers little-endian::

    b"MSOB" version:u8=1 reserved:3 count:u32
    count x (name_len:u16 datatype:u8 rank:u8 params_len:u32 data_len:u64
             name  rank x dim:u64  params_json  zero padding to a multiple of 8  data)

``datatype`` indexes ``_DATATYPES``; ``data`` is the binary tensor data encoding (raw row-major
bytes; BYTES as 4-byte length + bytes per element). The padding aligns data in the blob so that
unpacking returns views, not copies. A new layout gets a new version; an unknown version is a
ValueError, like any corrupt blob.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np
import orjson

from memoserve_serving.protocol.datatypes import DTYPES
from memoserve_serving.protocol.tensors import bytes_array, tensor_bytes, unframe
from memoserve_serving.protocol.types import Tensor

MAGIC = b"MSOB"
VERSION = 1
# Part of the format: append only, never reorder.
_DATATYPES = (
    "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
    "FP16", "FP32", "FP64", "BYTES", "BF16",
)  # fmt: skip
_CODES = {datatype: code for code, datatype in enumerate(_DATATYPES)}
_BLOB_HEAD = struct.Struct("<4sB3xI")
_TENSOR_HEAD = struct.Struct("<HBBIQ")
_ZEROS = bytes(8)
# The dims of a tensor of each rank (ranks above 8 are made as needed; they are rare).
_DIMS = [struct.Struct(f"<{rank}Q") for rank in range(9)]


def pack_outputs(outputs: Sequence[Tensor]) -> bytes:
    """The blob of ``outputs`` (see the module docstring for the layout)."""
    parts = [_BLOB_HEAD.pack(MAGIC, VERSION, len(outputs))]
    size = _BLOB_HEAD.size
    for tensor in outputs:
        code = _CODES.get(tensor.datatype)
        if code is None:
            raise ValueError(f"output {tensor.name!r}: unknown datatype {tensor.datatype!r}")
        array, shape = tensor.data, tensor.shape
        if np.asarray(array).size != prod(shape):
            raise ValueError(f"output {tensor.name!r}: data does not have shape {shape}")
        name = tensor.name.encode()
        params = orjson.dumps(tensor.parameters) if tensor.parameters else b""
        data = tensor_bytes(tensor.datatype, array)
        rank = len(shape)
        head = _TENSOR_HEAD.pack(len(name), code, rank, len(params), len(data))
        size += len(head) + len(name) + 8 * rank + len(params)
        padding = -size % 8
        dims = _DIMS[rank] if rank < len(_DIMS) else struct.Struct(f"<{rank}Q")
        parts += (head, name, dims.pack(*shape), params, _ZEROS[:padding])
        parts.append(data)
        size += padding + len(data)
    return b"".join(parts)


def unpack_outputs(blob: bytes) -> tuple[Tensor, ...]:
    """The tensors of a blob; ValueError if it is corrupt or of an unknown version.

    Fixed-size tensors are read-only views of ``blob``.
    """
    blob = bytes(blob)  # no copy for bytes; views need an immutable owner
    try:
        magic, version, count = _BLOB_HEAD.unpack_from(blob)
        if magic != MAGIC or version != VERSION:
            raise ValueError(f"not a version {VERSION} output blob")
        position = _BLOB_HEAD.size
        tensors = []
        for _ in range(count):
            tensor, position = _tensor(blob, position)
            tensors.append(tensor)
    except (struct.error, UnicodeDecodeError, OverflowError, IndexError) as exc:
        raise ValueError(f"corrupt output blob: {exc}") from None
    if position != len(blob):
        raise ValueError(f"corrupt output blob: {len(blob) - position} trailing bytes")
    return tuple(tensors)


def _tensor(blob: bytes, position: int) -> tuple[Tensor, int]:
    name_length, code, rank, params_length, length = _TENSOR_HEAD.unpack_from(blob, position)
    datatype = _DATATYPES[code]
    position += _TENSOR_HEAD.size
    name = blob[position : position + name_length].decode()
    position += name_length
    shape: tuple[int, ...] = struct.unpack_from(f"<{rank}Q", blob, position)
    position += 8 * rank
    parameters = {}
    if params_length:
        parameters = orjson.loads(blob[position : position + params_length])
        if type(parameters) is not dict:
            raise ValueError("corrupt output blob: parameters are not an object")
    position += params_length
    position += -position % 8
    # Positions only grow, so this also catches a name or parameters cut short by the end.
    if position + length > len(blob):
        raise ValueError(f"corrupt output blob: tensor {name!r} runs past the end")
    data = _array(datatype, shape, blob, position, length)
    return Tensor(name, datatype, shape, data, parameters), position + length


def _array(
    datatype: str, shape: tuple[int, ...], blob: bytes, start: int, length: int
) -> np.ndarray[Any, Any]:
    count = prod(shape)
    if datatype == "BYTES":
        return bytes_array(unframe(blob, start, start + length, count), shape)
    dtype = DTYPES[datatype]
    if length != count * dtype.itemsize:
        raise ValueError(f"corrupt output blob: {length} data bytes for shape {list(shape)}")
    if count == 0:
        return np.empty(shape, dtype)
    # The padding keeps data aligned relative to the blob; the blob itself is 8-aligned in memory.
    array: np.ndarray[Any, Any] = np.ndarray(shape, dtype, blob, start)
    return array if array.flags.aligned else array.copy()
