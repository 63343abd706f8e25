"""BF16 from JSON numbers: the top half of an IEEE float32, rounded once, to nearest-even.

``struct`` has no BF16 code, and a cast through float32 (what ml_dtypes and PyTorch do with a
float64) rounds twice: 1 + 2**-8 + 2**-40 becomes the tie 1 + 2**-8 in float32, then 1.0 in BF16,
where the nearest BF16 is 1 + 2**-7. JSON numbers are float64s (orjson parses them exactly
rounded), so they are rounded here once, as ``struct`` rounds FP16 and FP32: first to float32 with
round-to-odd (a result that is inexact keeps its lowest bit set, so no tie is made up), then to
BF16 with round-to-nearest-even on the bits. Round-to-odd to a format with at least two more bits
than the target makes the second rounding exact; float32 has sixteen more than BF16, subnormals
included. Values that float32 holds exactly (every BF16 a float32 client writes) round as
ml_dtypes rounds them.
"""

from __future__ import annotations

import numpy as np

_INFINITY = 0x7F80


def pack_json_floats(*values: float) -> bytes:
    """The little-endian BF16 bytes of finite JSON numbers (Python ints and floats).

    OverflowError for a value that rounds to infinity (from 2**128 - 2**119, halfway between the
    largest BF16 and the next power of two) or does not fit a float64 at all.
    """
    wide = np.array(values, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32 is beyond BF16: caught below
        narrow = wide.astype(np.float32)
    bits = narrow.view(np.uint32)
    back = narrow.astype(np.float64)
    inexact = back != wide
    # Round to odd: the float32 toward zero from the exact value, with its lowest bit set. Bits
    # order magnitudes, so one step down is the next float32 toward zero (infinity -> max).
    bits = (bits - (inexact & (np.abs(back) > np.abs(wide)))) | inexact
    # Round to nearest-even at bit 16: add just under half, plus one if the kept part is odd.
    half = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
    if ((half & 0x7FFF) == _INFINITY).any():
        raise OverflowError("a value rounds to infinity in BF16")
    packed: bytes = half.tobytes()
    return packed
