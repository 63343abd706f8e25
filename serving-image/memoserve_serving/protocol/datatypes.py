"""v2 datatypes and their numpy dtypes (little-endian, as the binary extension says)."""

from __future__ import annotations

from typing import Any

import numpy as np

# BYTES tensors are object arrays of ``bytes``; every other datatype is a fixed-size numpy dtype.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
DATATYPES = frozenset(DTYPES)


def dtype_of(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of a v2 datatype; KeyError for an unknown one."""
    return DTYPES[datatype]


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The v2 datatype of a numpy dtype (strings and bytes map to BYTES)."""
    if dtype.kind in "OSU":
        return "BYTES"
    for name, candidate in DTYPES.items():
        if candidate.kind == dtype.kind and candidate.itemsize == dtype.itemsize:
            return name
    raise ValueError(f"no v2 datatype for numpy dtype {dtype}")
