"""Cache keys: a digest of the canonical request, so that equal requests share one answer.

The canonical request is what the model's answer depends on, whatever way it travelled: a JSON
head (sorted keys) holding the inputs sorted by name, each as [name, datatype, shape, parameters,
data size], the requested outputs sorted by name as [name, parameters] when any of them has
parameters (outputs named only to pick some of the answer are left out: the whole answer is
cached and they are projected from it), and the request parameters; then each input's data in
that order, as the binary tensor data encoding (little-endian bytes; BYTES: 4-byte length +
bytes per element). The head is length-prefixed and gives every data size, so no two requests
hash the same bytes. Transport details (JSON or binary, spacing, key order, nesting, ``1`` vs
``1.0``, the request id, binary_data*) were dropped by the decoder already.
"""

from __future__ import annotations

import hashlib
import struct
from binascii import b2a_hex
from operator import attrgetter
from typing import Final

import orjson

from memoserve_serving.protocol.types import InferenceRequest

# The version names the key scheme AND the value format (protocol.answer): bump it when either
# changes, so that a rolling update never reads values it cannot decode. v3: the request digest
# became a hash tag (``{...}``), for Redis Cluster.
PREFIX = b"memoserve:v3:"
DIGEST_SIZE = 20
# blake2b personalization (16 bytes at most): keeps our digests apart from any other use of
# blake2b, and changes whenever the canonical encoding does. Copying a hasher is cheaper than
# making one.
_PERSON = b"memoserve-req-v2"
_HASHER = hashlib.blake2b(digest_size=DIGEST_SIZE, person=_PERSON)
_U64 = struct.Struct("<Q").pack
# Numpy integers in a hand-made shape encode as the integers they are.
_HEAD_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
_MODEL_DIGEST_CHARS = 16
_BY_NAME = attrgetter("name")


def request_digest(request: InferenceRequest) -> bytes:
    """The blake2b digest (DIGEST_SIZE bytes) of the canonical request."""
    return _hasher(request).digest()


def _hasher(request: InferenceRequest) -> hashlib.blake2b:
    # Loops, not comprehensions: this runs on every request, most with one input, no outputs.
    inputs = request.inputs
    if len(inputs) == 1:
        tensor = inputs[0]
        raw = tensor.raw_bytes()
        data: list[bytes | memoryview] = [raw]
        described = [(tensor.name, tensor.datatype, tensor.shape, tensor.parameters, len(raw))]
    else:
        data = []
        described = []
        for tensor in sorted(inputs, key=_BY_NAME):
            raw = tensor.raw_bytes()
            data.append(raw)
            described.append(
                (tensor.name, tensor.datatype, tensor.shape, tensor.parameters, len(raw))
            )
    wanted = []
    outputs = request.outputs
    # Outputs named only to select from the answer are projected from the cached full answer
    # (dataplane): they are not part of the question.
    if outputs and not request.selects_outputs:
        for output in sorted(outputs, key=_BY_NAME) if len(outputs) > 1 else outputs:
            wanted.append((output.name, output.parameters))
    head = orjson.dumps((described, wanted, request.parameters), option=_HEAD_OPTIONS)
    hasher = _HASHER.copy()
    hasher.update(_U64(len(head)) + head)
    for raw in data:
        hasher.update(raw)
    return hasher


class RequestKeys:
    """The cache keys of one model's requests:
    ``memoserve:v3:<namespace>:<model_digest[:16]>:{<hex request digest>}``.

    The model digest part has a fixed width and no ':', so a namespace with ':' in it cannot
    make two keys collide; ValueError for a model digest shorter than 16 characters.

    The request digest is the key's hash tag: on a Redis Cluster the slot is that of the digest
    alone, so the answer and its single-flight lock (``lock:`` + key, store.py) share a slot
    (one MGET, one script for both), and the keys of one model still spread over all shards.
    Redis takes the first ``{`` as the tag's start, so nothing before the digest may hold a
    brace: ValueError for a namespace or model digest with ``{`` or ``}`` (Kubernetes names
    never have one).
    """

    __slots__ = ("prefix",)

    def __init__(self, namespace: str, model_digest: str) -> None:
        model = model_digest[:_MODEL_DIGEST_CHARS]
        if len(model) != _MODEL_DIGEST_CHARS or ":" in model:
            raise ValueError(f"model digest {model_digest!r}: need 16+ characters without ':'")
        for part, what in ((namespace, "cache namespace"), (model, "model digest")):
            if "{" in part or "}" in part:
                raise ValueError(f"{what} {part!r} must not contain '{{' or '}}' (hash tags)")
        self.prefix: Final = b"".join((PREFIX, namespace.encode(), b":", model.encode(), b":{"))

    def __call__(self, request: InferenceRequest) -> bytes:
        return self.prefix + b2a_hex(_hasher(request).digest()) + b"}"
