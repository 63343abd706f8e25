"""Tensor codecs shared by requests, responses, the cache blob and the cache key.

Everything here is protocol-agnostic and raises ``ValueError`` for bad data; callers add the
tensor's name and turn it into their own error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import chain
from math import prod
from typing import Any

import numpy as np

from memoserve_serving.protocol.bfloat16 import pack_json_floats
from memoserve_serving.protocol.datatypes import DTYPES

_U32 = struct.Struct("<I")

# The Python types orjson produces that each datatype accepts. Exact types: bool is not an int here.
_ACCEPTS: dict[str, frozenset[type]] = {
    "BOOL": frozenset({bool}),
    **{f"{kind}{bits}": frozenset({int}) for kind in ("INT", "UINT") for bits in (8, 16, 32, 64)},
    "FP16": frozenset({int, float}),
    "FP32": frozenset({int, float}),
    "FP64": frozenset({int, float}),
    "BF16": frozenset({int, float}),
}
_STRINGS = frozenset({str})
_JSON_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "non-integer number",
    str: "string",
    list: "array (ragged or deeper than the shape)",
    dict: "object",
    type(None): "null",
}
# The ``struct`` code of each fixed-size datatype ("<" makes them standard-size little-endian).
# ``struct`` checks integer ranges, and rounds floats to nearest-even like numpy's casts; JSON
# cannot carry infinities, so a value that rounds to one was out of range: ``struct`` raises
# OverflowError for those (FP16 from 65520, FP32 from 2**128 - 2**103: halfway between the largest
# finite value and the next power of two).
_CODES = {
    "BOOL": "?",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
# Datatype -> (the types it accepts, count -> a Struct's pack). A Struct is small whatever its
# count (one repeated code), and a server sees few shapes; the cap only bounds what odd clients
# can make us keep. BF16 has no ``struct`` code: its packer, whatever the count, is
# ``bfloat16.pack_json_floats`` (same rounding, same OverflowError), so the other datatypes pay
# nothing for it.
_FIXED: dict[str, tuple[frozenset[type], dict[int, Callable[..., bytes]]]] = {
    datatype: (_ACCEPTS[datatype], {}) for datatype in (*_CODES, "BF16")
}
_MAX_PACKERS = 64


def flatten(data: list[Any], shape: tuple[int, ...]) -> list[Any]:
    """The row-major elements of flat or fully nested ``data``, which must match ``shape``."""
    if not data or type(data[0]) is not list:
        if len(data) != prod(shape):
            raise ValueError(
                f"data has {len(data)} elements, shape {list(shape)} needs {prod(shape)}"
            )
        return data
    if not shape or len(data) != shape[0]:
        raise ValueError(f"nested data has {len(data)} rows, shape {list(shape)} does not match")
    level = data
    for depth, dim in enumerate(shape[1:], 1):
        if not level:
            break
        if set(map(type, level)) != {list} or set(map(len, level)) != {dim}:
            raise ValueError(
                f"nested data is ragged or does not match shape {list(shape)} at depth {depth}"
            )
        level = list(chain.from_iterable(level))
    return level


def json_to_raw(datatype: str, shape: tuple[int, ...], data: Any) -> bytes:
    """The binary tensor data encoding of JSON ``data`` (flat or nested lists) for ``datatype``.

    The exact Python types are checked first (a boolean is no number, a float no integer), then
    ``struct`` packs the values and checks their range: an integer that does not fit its type, a
    float that would round to infinity in FP16/FP32/BF16. The bytes are what numpy would make of the
    values (BF16: rounded once, where ml_dtypes rounds a float64 twice; see protocol.bfloat16).
    """
    if type(data) is not list:
        raise ValueError(f"data must be an array, not {_json_name(type(data))}")
    if (data and type(data[0]) is list) or len(data) != prod(shape):
        data = flatten(data, shape)
    if datatype == "BYTES":
        return _frame_strings(data)
    accepts, packers = _FIXED[datatype]
    if not accepts.issuperset(map(type, data)):
        bad = ", ".join(sorted(_json_name(kind) for kind in set(map(type, data)) - accepts))
        raise ValueError(f"{datatype} data contains {bad} values")
    pack = packers.get(len(data)) or _packer(datatype, len(data))
    try:
        return pack(*data)
    except (struct.error, OverflowError):
        raise ValueError(f"data has a value out of range for {datatype}") from None


def _packer(datatype: str, count: int) -> Callable[..., bytes]:
    """A new ``struct`` packing of ``count`` values of ``datatype``, little-endian."""
    packers = _FIXED[datatype][1]
    if len(packers) >= _MAX_PACKERS:
        packers.clear()
    if datatype == "BF16":
        pack = packers[count] = pack_json_floats
    else:
        pack = packers[count] = struct.Struct(f"<{count}{_CODES[datatype]}").pack
    return pack


def _frame_strings(flat: list[Any]) -> bytes:
    """JSON strings as BYTES elements (UTF-8), framed as the binary tensor data encoding."""
    if not _STRINGS.issuperset(map(type, flat)):
        bad = ", ".join(sorted(_json_name(kind) for kind in set(map(type, flat)) - _STRINGS))
        raise ValueError(f"BYTES data must be strings, found {bad} values")
    parts: list[bytes] = []
    add = parts.append
    pack = _U32.pack
    for string in flat:
        element = string.encode()
        add(pack(len(element)))
        add(element)
    return b"".join(parts)


def _json_name(kind: type) -> str:
    return _JSON_NAMES.get(kind, kind.__name__)


def bytes_array(elements: list[bytes], shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """An object array of ``bytes`` with ``shape`` (numpy would make 'S' arrays that drop NULs)."""
    array = np.empty(len(elements), dtype=object)
    array[:] = elements
    return array.reshape(shape)


def buffer_to_array(
    datatype: str, shape: tuple[int, ...], buffer: bytes, start: int, size: int
) -> np.ndarray[Any, Any]:
    """The tensor held in ``buffer[start:start + size]`` in the binary tensor data format.

    Fixed-size types become a read-only view of ``buffer`` (copied only if misaligned).
    """
    count = prod(shape)
    if datatype == "BYTES":
        return bytes_array(unframe(buffer, start, start + size, count), shape)
    dtype = DTYPES[datatype]
    if size != count * dtype.itemsize:
        raise ValueError(
            f"binary_data_size is {size} bytes, shape {list(shape)} of {datatype} "
            f"needs {count * dtype.itemsize}"
        )
    if count == 0:
        return np.empty(shape, dtype=dtype)
    if datatype == "BOOL" and buffer[start : start + size].translate(None, b"\x00\x01"):
        raise ValueError("BOOL binary data has bytes other than 0 and 1")
    array: np.ndarray[Any, Any] = np.ndarray(shape, dtype, buffer, start)
    return array if array.flags.aligned else array.copy()


def buffer_to_raw(
    datatype: str, shape: tuple[int, ...], buffer: bytes, start: int, size: int
) -> bytes:
    """``buffer[start:start + size]`` once checked to hold a tensor in the binary tensor data
    format (a copy: for small tensors, where it costs less than making an array)."""
    count = prod(shape)
    end = start + size
    if datatype == "BYTES":
        unframe(buffer, start, end, count)
        return buffer[start:end]
    itemsize = DTYPES[datatype].itemsize
    if size != count * itemsize:
        raise ValueError(
            f"binary_data_size is {size} bytes, shape {list(shape)} of {datatype} "
            f"needs {count * itemsize}"
        )
    raw = buffer[start:end]
    if datatype == "BOOL" and raw.translate(None, b"\x00\x01"):
        raise ValueError("BOOL binary data has bytes other than 0 and 1")
    return raw


def unframe(buffer: bytes, start: int, end: int, count: int) -> list[bytes]:
    """``count`` BYTES elements (4-byte little-endian length, then the bytes) filling start:end."""
    elements = []
    position = start
    for index in range(count):
        if position + 4 > end:
            raise ValueError(f"BYTES data ends before element {index} of {count}")
        (length,) = _U32.unpack_from(buffer, position)
        position += 4
        if position + length > end:
            raise ValueError(
                f"BYTES element {index} claims {length} bytes, {end - position} remain"
            )
        elements.append(buffer[position : position + length])
        position += length
    if position != end:
        raise ValueError(f"BYTES data has {end - position} bytes after its {count} elements")
    return elements


def frame(elements: list[Any]) -> bytes:
    """BYTES elements (bytes, or str as UTF-8) as 4-byte little-endian length + bytes each."""
    parts = []
    pack = _U32.pack
    for element in elements:
        if isinstance(element, str):
            element = element.encode()
        elif not isinstance(element, bytes):
            raise ValueError(f"BYTES element of type {type(element).__name__}")
        parts.append(pack(len(element)))
        parts.append(element)
    return b"".join(parts)


def fixed_array(datatype: str, data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``data`` as a C-contiguous array of ``datatype``'s little-endian dtype (no copy if it is)."""
    return np.ascontiguousarray(data, dtype=DTYPES[datatype])


def tensor_bytes(datatype: str, data: np.ndarray[Any, Any]) -> bytes:
    """The binary tensor data encoding: raw row-major little-endian bytes, or framed BYTES."""
    if datatype == "BYTES":
        return frame(np.asarray(data).ravel().tolist())
    return fixed_array(datatype, data).tobytes()


def json_data(datatype: str, data: np.ndarray[Any, Any]) -> Any:
    """Flat JSON-able data (orjson with OPT_SERIALIZE_NUMPY); None if BYTES are not all UTF-8.

    BF16 goes out as float32 (exact; orjson knows no bfloat16): the shortest decimal that reads
    back as that float32, which any client rounds back to the same BF16.
    """
    if datatype != "BYTES":
        if datatype == "BF16":
            return fixed_array(datatype, data).reshape(-1).astype(np.float32)
        return fixed_array(datatype, data).reshape(-1)
    strings = []
    for element in np.asarray(data).ravel().tolist():
        if isinstance(element, bytes):
            try:
                element = element.decode()
            except UnicodeDecodeError:
                return None
        elif not isinstance(element, str):
            raise ValueError(f"BYTES element of type {type(element).__name__}")
        strings.append(element)
    return strings
