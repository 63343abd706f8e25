"""v2 datatypes and their numpy dtypes (little-endian, as the binary extension says)."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

# numpy has no bfloat16: BF16 tensors are arrays of ml_dtypes' bfloat16, a real numpy dtype (the
# one tritonclient uses too). Its arrays view the wire bytes without a copy, cast to and from the
# float types (rounding to nearest-even), and a model computes with them as with FP16; uint16
# views of the bits would instead make every codec and every model special-case BF16. Its byte
# order is the machine's, little-endian on every platform the images are built for.
BF16 = np.dtype(ml_dtypes.bfloat16)

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
    "BF16": BF16,
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
    if dtype.kind == "V":  # bfloat16, or a structured or opaque dtype of the same size
        if dtype == BF16:
            return "BF16"
        raise ValueError(f"no v2 datatype for numpy dtype {dtype}")
    for name, candidate in DTYPES.items():
        if candidate.kind == dtype.kind and candidate.itemsize == dtype.itemsize:
            return name
    raise ValueError(f"no v2 datatype for numpy dtype {dtype}")
