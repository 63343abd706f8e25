"""A model's answer to one request as the cache keeps it.

Most clients ask for JSON outputs, so the answer carries its ``outputs`` array already encoded
as JSON: a cache hit for them is a splice of bytes, with no tensor decoding or JSON encoding.
The packed tensors (protocol.blob) travel alongside for clients that ask for binary outputs.

Layout: ``b"MSA1" json_len:u32le json packed`` (json_len 0 = the outputs cannot be JSON).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from memoserve_serving.protocol.blob import pack_outputs, unpack_outputs
from memoserve_serving.protocol.response import encode_outputs_json
from memoserve_serving.protocol.types import Tensor

MAGIC = b"MSA1"
_HEAD = struct.Struct("<4sI")


class Answer:
    """One is built on every cache hit, so a plain slotted class: a frozen dataclass costs twice
    as much to construct. Fields are ``Final``: mypy refuses assignments."""

    __slots__ = ("outputs_json", "packed")

    def __init__(self, outputs_json: bytes | None, packed: bytes) -> None:
        # The JSON "outputs" array; None if some output cannot be JSON.
        self.outputs_json: Final = outputs_json
        self.packed: Final = packed  # protocol.blob of the output tensors

    @classmethod
    def of(cls, outputs: Sequence[Tensor]) -> Answer:
        return cls(encode_outputs_json(outputs), pack_outputs(outputs))

    def tensors(self) -> tuple[Tensor, ...]:
        return unpack_outputs(self.packed)

    def pack(self) -> bytes:
        fragment = self.outputs_json or b""
        return b"".join((_HEAD.pack(MAGIC, len(fragment)), fragment, self.packed))

    @classmethod
    def unpack(cls, value: bytes) -> Answer:
        """ValueError for anything that is not an answer of this version."""
        try:
            magic, length = _HEAD.unpack_from(value)
        except struct.error:
            raise ValueError("corrupt answer: too short") from None
        start = _HEAD.size
        if magic != MAGIC or start + length > len(value):
            raise ValueError("not a version 1 answer")
        fragment = value[start : start + length] if length else None
        if fragment is not None and not (fragment.startswith(b"[") and fragment.endswith(b"]")):
            raise ValueError("corrupt answer: outputs are not a JSON array")
        return cls(fragment, value[start + length :])
