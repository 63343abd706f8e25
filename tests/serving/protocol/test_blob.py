"""The cache value codec: exact round trips, and ValueError for anything it did not write."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memoserve_serving.protocol.blob import MAGIC, VERSION, pack_outputs, unpack_outputs
from memoserve_serving.protocol.datatypes import BF16
from memoserve_serving.protocol.types import Tensor
from tests.serving.protocol.test_request import VALUES, expected_array

EVERY_DATATYPE = tuple(
    Tensor(f"out-{datatype}", datatype, (2, 2), expected_array(datatype, VALUES[datatype], (2, 2)))
    for datatype in sorted(VALUES)
)

# BF16 NaNs with two payloads and a sign, infinity, -0.0, the smallest subnormal, 1.0.
BF16_BITS = [0x7FC1, 0xFFA0, 0x7F80, 0x8000, 0x0001, 0x3F80]


def assert_same(got: tuple[Tensor, ...], want: tuple[Tensor, ...]) -> None:
    assert [(t.name, t.datatype, t.shape, dict(t.parameters)) for t in got] == [
        (t.name, t.datatype, t.shape, dict(t.parameters)) for t in want
    ]
    for a, b in zip(got, want, strict=True):
        assert a.data.shape == b.shape
        assert a.data.dtype == b.data.dtype
        if a.datatype == "BYTES":
            assert a.data.tolist() == b.data.tolist()
        else:
            assert a.data.tobytes() == b.data.tobytes()  # NaN payloads too


def test_every_datatype_round_trips() -> None:
    assert_same(unpack_outputs(pack_outputs(EVERY_DATATYPE)), EVERY_DATATYPE)


@pytest.mark.parametrize(
    "outputs",
    [
        (),
        (Tensor("s", "FP64", (), np.array(2.5)),),
        (Tensor("e", "FP32", (0, 3), np.zeros((0, 3), dtype=np.float32)),),
        (Tensor("b", "BYTES", (0,), np.zeros(0, dtype=object)),),
        (Tensor("ü-名", "INT8", (1,), np.array([1], dtype=np.int8), {"unit": "cm", "n": [1]}),),
        (Tensor("nan", "FP16", (2,), np.array([np.nan, -np.inf], dtype=np.float16)),),
        (Tensor("bf16", "BF16", (6,), np.array(BF16_BITS, "<u2").view(BF16)),),
    ],
    ids=["none", "scalar", "empty", "empty-bytes", "unicode-params", "nan", "bf16"],
)
def test_edge_cases_round_trip(outputs: tuple[Tensor, ...]) -> None:
    assert_same(unpack_outputs(pack_outputs(outputs)), outputs)


def test_unpacked_arrays_are_aligned_views() -> None:
    outputs = (
        Tensor("a", "INT8", (3,), np.array([1, 2, 3], dtype=np.int8)),
        Tensor("bb", "FP64", (2,), np.array([0.5, 1.5])),
    )
    blob = pack_outputs(outputs)
    for tensor in unpack_outputs(blob):
        assert tensor.data.flags.aligned
        assert not tensor.data.flags.writeable
    assert len(blob) % 8 == 0


def test_model_arrays_are_stored_as_their_datatype() -> None:
    (tensor,) = unpack_outputs(pack_outputs((Tensor("y", "FP32", (2,), np.array([1.0, 2.0])),)))
    assert tensor.data.dtype == np.float32


def test_float32_model_arrays_for_a_bf16_output_are_rounded_to_nearest_even() -> None:
    # 1 + 2**-8 is a tie: it goes to the even 1.0; 1 + 3 * 2**-8 to the even 1 + 2**-6.
    model = np.array([1.0 + 2**-8, 1.0 + 3 * 2**-8, -0.0], dtype=np.float32)
    (tensor,) = unpack_outputs(pack_outputs((Tensor("y", "BF16", (3,), model),)))
    assert tensor.data.dtype == BF16
    assert tensor.data.view("<u2").tolist() == [0x3F80, 0x3F82, 0x8000]


def test_datatype_codes_are_appended_never_reordered() -> None:
    """The code of each datatype is part of the cache value format (byte 14 of a one-tensor blob:
    after the 12-byte head and the tensor's u16 name length)."""
    codes = {}
    for datatype in sorted(VALUES):
        blob = pack_outputs((Tensor("y", datatype, (0,), expected_array(datatype, [], (0,))),))
        codes[datatype] = blob[14]
    assert codes == {
        "BOOL": 0, "INT8": 1, "INT16": 2, "INT32": 3, "INT64": 4, "UINT8": 5, "UINT16": 6,
        "UINT32": 7, "UINT64": 8, "FP16": 9, "FP32": 10, "FP64": 11, "BYTES": 12, "BF16": 13,
    }  # fmt: skip


def test_pack_refuses_a_tensor_it_could_not_read_back() -> None:
    with pytest.raises(ValueError, match="unknown datatype"):
        pack_outputs((Tensor("y", "FP8", (1,), np.zeros(1)),))
    with pytest.raises(ValueError, match="shape"):
        pack_outputs((Tensor("y", "FP32", (3,), np.zeros(2)),))


def test_every_truncation_is_a_value_error() -> None:
    blob = pack_outputs(EVERY_DATATYPE)
    for end in range(len(blob)):
        with pytest.raises(ValueError, match=r"corrupt|version|BYTES"):
            unpack_outputs(blob[:end])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda blob: b"XSOB" + blob[4:],
        lambda blob: MAGIC + bytes([VERSION + 1]) + blob[5:],
        lambda blob: blob + b"\x00",
        lambda blob: blob[:8] + b"\x02" + blob[9:],  # count 2, one tensor present
        lambda blob: blob[:14] + b"\xff" + blob[15:],  # datatype code 255
        lambda blob: b"",
    ],
    ids=["magic", "version", "trailing", "count", "datatype", "empty"],
)
def test_corrupt_blobs_are_value_errors(mutate: Callable[[bytes], bytes]) -> None:
    blob = pack_outputs((Tensor("y", "FP32", (2,), np.array([1.0, 2.0], dtype=np.float32)),))
    with pytest.raises(ValueError, match=r"corrupt|version|trailing"):
        unpack_outputs(mutate(blob))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_damage_is_a_value_error_or_a_valid_blob(data: st.DataObject) -> None:
    blob = bytearray(pack_outputs(EVERY_DATATYPE))
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ValueError):
        unpack_outputs(bytes(blob))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_value_errors(blob: bytes) -> None:
    with contextlib.suppress(ValueError):
        unpack_outputs(MAGIC + bytes([VERSION]) + blob)
