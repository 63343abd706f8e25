"""Cache keys: a digest of the canonical request, so that equal requests share one answer.

The canonical request is what the model's answer depends on, whatever way it travelled: inputs
sorted by name, each as name, datatype, shape, little-endian data bytes (BYTES: 4-byte length +
bytes per element) and parameters; the requested outputs sorted by name with their parameters; the
request parameters. Transport details (JSON or binary, spacing, key order, nesting, ``1`` vs
``1.0``, the request id, binary_data*) were dropped by the decoder already. Every field is
length-prefixed and every list counted, so that no two requests hash the same bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from memoserve_serving.protocol.tensors import fixed_array, frame
from memoserve_serving.protocol.types import InferenceRequest

# The version names the key scheme AND the value format (protocol.answer): bump it when either
# changes, so that a rolling update never reads values it cannot decode.
PREFIX = b"memoserve:v2:"
DIGEST_SIZE = 20
# blake2b personalization (16 bytes at most): keeps our digests apart from any other use of
# blake2b, and changes whenever the canonical encoding does.
_PERSON = b"memoserve-req-v1"
_U64 = struct.Struct("<Q").pack
_MODEL_DIGEST_CHARS = 16


def request_digest(request: InferenceRequest) -> bytes:
    """The blake2b digest (DIGEST_SIZE bytes) of the canonical request."""
    hasher = hashlib.blake2b(digest_size=DIGEST_SIZE, person=_PERSON)
    inputs = request.inputs
    if len(inputs) > 1:
        inputs = tuple(sorted(inputs, key=lambda tensor: tensor.name))
    parts = [_U64(len(inputs))]
    add = parts.extend
    for tensor in inputs:
        name = tensor.name.encode()
        datatype = tensor.datatype.encode()
        shape = tensor.shape
        params = _canonical(tensor.parameters)
        data = _data(tensor.datatype, tensor.data)
        add((_U64(len(name)), name, _U64(len(datatype)), datatype, _U64(len(shape))))
        add(map(_U64, shape))
        add((_U64(len(params)), params, _U64(data.nbytes)))
        # Tensor data goes to the hash directly: no copy of a large tensor into ``parts``.
        hasher.update(b"".join(parts))
        hasher.update(data)
        parts.clear()
    outputs = request.outputs
    if len(outputs) > 1:
        outputs = tuple(sorted(outputs, key=lambda output: output.name))
    parts.append(_U64(len(outputs)))
    for output in outputs:
        name = output.name.encode()
        params = _canonical(output.parameters)
        add((_U64(len(name)), name, _U64(len(params)), params))
    params = _canonical(request.parameters)
    add((_U64(len(params)), params))
    hasher.update(b"".join(parts))
    return hasher.digest()


def _data(datatype: str, data: np.ndarray[Any, Any]) -> memoryview:
    """The tensor's binary data encoding as flat bytes; no copy if already contiguous LE."""
    if datatype == "BYTES":
        return memoryview(frame(np.asarray(data).ravel().tolist()))
    return fixed_array(datatype, data).reshape(-1).data.cast("B")


def cache_key(namespace: str, model_digest: str, request: InferenceRequest) -> bytes:
    """``memoserve:v2:<namespace>:<model_digest[:16]>:<hex request digest>``.

    The model digest part has a fixed width and no ':', so a namespace with ':' in it cannot
    make two keys collide; ValueError for a model digest shorter than 16 characters.
    """
    model = model_digest[:_MODEL_DIGEST_CHARS]
    if len(model) != _MODEL_DIGEST_CHARS or ":" in model:
        raise ValueError(f"model digest {model_digest!r}: need 16+ characters without ':'")
    return b"".join(
        (
            PREFIX,
            namespace.encode(),
            b":",
            model.encode(),
            b":",
            request_digest(request).hex().encode(),
        )
    )


def _canonical(parameters: Mapping[str, Any]) -> bytes:
    """Parameters as sorted-key JSON (they are small, JSON-born dicts); empty -> b''."""
    if not parameters:
        return b""
    return orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS)
