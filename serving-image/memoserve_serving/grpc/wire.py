"""A ``ModelInferResponse`` written as protobuf wire bytes directly, without building messages.

An answer is a few strings, shapes and tensor bytes: writing their wire encoding costs less than
building a ``ModelInferResponse`` and serializing it (every field set from Python crosses into
protobuf's C code). The encoding is protobuf's (fields in number order, packed shapes, proto3
defaults left out), so any parser reads it as the message ``codec.encode_response`` makes;
tests/serving/grpc/test_wire.py holds the two to the same parse. Parameters, rare in answers,
and the typed contents of integer, bool and BYTES tensors (varints, per element) go through
protobuf's own encoder; raw contents and FP32/FP64 contents (packed little-endian, the tensor's
own bytes) are spliced in as they are.
"""

from __future__ import annotations

from typing import Any

from memoserve_serving.grpc.codec import fill_parameters
from memoserve_serving.grpc.contents import FIELDS, fill_contents
from memoserve_serving.grpc.proto.open_inference_grpc_pb2 import (
    InferTensorContents,
    ModelInferResponse,
)
from memoserve_serving.protocol.memo import Memo
from memoserve_serving.protocol.types import InferenceResponse, Tensor

# Wire types: 0 varint, 2 length-delimited. A tag is (field number << 3) | wire type.
_MODEL_NAME, _MODEL_VERSION, _ID, _PARAMETERS, _OUTPUTS_TAG, _RAW = (
    b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x2a", b"\x32",
)  # fmt: skip
_NAME, _DATATYPE, _SHAPE, _CONTENTS = b"\x0a", b"\x12", b"\x1a", b"\x2a"
# The packed fields whose elements are the tensor's little-endian bytes as they are.
_PACKED_AS_IS = {"FP32": b"\x32", "FP64": b"\x3a"}  # fp32_contents = 6, fp64_contents = 7
_Output = ModelInferResponse.InferOutputTensor
# The encoded outputs of recent cached answers (protocol/memo.py), by their blob and the kind of
# contents asked for: a hit on one of them is a splice of bytes. Blobs up to this size, this many.
MEMO_MAX_BLOB_BYTES = 65536
MEMO_ANSWERS = 256
_OUTPUTS: Memo[tuple[bytes, bool], bytes] = Memo(MEMO_ANSWERS)


def varint(value: int) -> bytes:
    """Protobuf's varint; a negative int64 as its two's complement (ten bytes)."""
    if 0 <= value < 0x80:
        return bytes((value,))
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes | memoryview) -> list[bytes | memoryview]:
    return [tag, varint(len(payload)), payload]


def _string(tag: bytes, text: str) -> list[bytes | memoryview]:
    return _delimited(tag, text.encode()) if text else []


def encode_response_bytes(response: InferenceResponse, raw: bool) -> bytes:
    """``codec.encode_response(response, raw).SerializeToString()``, written directly."""
    parts: list[bytes | memoryview] = [
        *_string(_MODEL_NAME, response.model_name),
        *_string(_MODEL_VERSION, response.model_version or ""),
        *_string(_ID, response.id or ""),
    ]
    if response.parameters:
        message = ModelInferResponse()
        fill_parameters(message.parameters, response.parameters)
        parts.append(message.SerializeToString(deterministic=True))  # field 4 entries only
    packed = response.packed
    if packed is not None and len(packed) <= MEMO_MAX_BLOB_BYTES:
        outputs = response.outputs
        parts.append(_OUTPUTS.get((packed, raw), lambda _: _outputs(outputs, raw)))
    else:
        parts.append(_outputs(response.outputs, raw))
    return b"".join(parts)


def _outputs(outputs: tuple[Tensor, ...], raw: bool) -> bytes:
    """Fields 5 and 6: the output tensors, then their raw contents if they travel raw."""
    if not raw:
        raw = any(tensor.datatype not in FIELDS for tensor in outputs)
    parts: list[bytes | memoryview] = []
    contents: list[bytes | memoryview] = []
    for tensor in outputs:
        parts += _delimited(_OUTPUTS_TAG, _output(tensor, raw))
        if raw:
            contents += _delimited(_RAW, tensor.raw_bytes())
    return b"".join(parts + contents)


def _output(tensor: Tensor, raw: bool) -> bytes:
    """One ``InferOutputTensor``'s bytes (without its own tag and length)."""
    if tensor.parameters:  # rare: protobuf writes the map
        message = _Output(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        fill_parameters(message.parameters, tensor.parameters)
        if not raw:
            fill_contents(message.contents, tensor)
        return bytes(message.SerializeToString(deterministic=True))
    shape = b"".join(varint(dim) for dim in tensor.shape)
    parts: list[bytes | memoryview] = [
        *_string(_NAME, tensor.name),
        *_string(_DATATYPE, tensor.datatype),
        *(_delimited(_SHAPE, shape) if shape else ()),
    ]
    if not raw:
        parts += _delimited(_CONTENTS, _contents(tensor))
    return b"".join(parts)


def _contents(tensor: Tensor) -> bytes | memoryview:
    """The ``InferTensorContents`` of a tensor sent typed."""
    tag = _PACKED_AS_IS.get(tensor.datatype)
    if tag is not None:
        data = tensor.raw_bytes()  # little-endian: the packed encoding itself
        return b"".join(_delimited(tag, data)) if len(data) else b""
    message: Any = InferTensorContents()
    fill_contents(message, tensor)
    return bytes(message.SerializeToString())
