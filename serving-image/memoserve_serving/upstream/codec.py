"""v2 REST to and from the upstream: a request as the upstream takes it, its answer as tensors.

An upstream that lists the binary tensor data extension in its server metadata (Triton,
memoserve) gets every tensor as raw bytes, both ways: no numbers printed and parsed as text, and
values JSON cannot carry (NaN, infinities) cross intact. Any other (MLServer) gets JSON, with
binary data only for what JSON cannot carry at all (BYTES that are not UTF-8). The upstream is
asked for every output unless an output's parameters change the answer: the front caches whole
answers and picks the requested outputs itself (dataplane.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.request import decode_tensor
from memoserve_serving.protocol.tensors import json_data
from memoserve_serving.protocol.types import InferenceRequest, Tensor

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
BINARY_EXTENSION = "binary_tensor_data"  # as v2 server metadata lists it


class InvalidAnswer(ValueError):
    """The upstream's answer is not a v2 response we can read."""


def encode_request(
    request: InferenceRequest, wanted: Sequence[str], *, binary: bool = False
) -> tuple[bytes, int | None]:
    """The body to send and, when some input travels binary, its JSON header's length.
    ``binary``: the upstream serves the binary tensor data extension (all of it binary)."""
    document: dict[str, Any] = {}
    if request.id is not None:
        document["id"] = request.id
    if request.parameters:
        document["parameters"] = dict(request.parameters)
    if binary and not wanted:
        document["parameters"] = document.get("parameters", {}) | {"binary_data_output": True}
    inputs, chunks = [], []
    for tensor in request.inputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        parameters = dict(tensor.parameters)
        data = None if binary else json_data(tensor.datatype, tensor.data)
        if data is None:  # binary wanted, or BYTES that are not UTF-8
            # As decoded (no array built and turned back into bytes), when it came that way.
            raw = tensor.raw_bytes()
            parameters["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            entry["data"] = data
        if parameters:
            entry["parameters"] = parameters
        inputs.append(entry)
    document["inputs"] = inputs
    if wanted:
        asked = {output.name: output for output in request.outputs}
        outputs = []
        for name in wanted:
            output = asked.get(name)
            parameters = dict(output.parameters) if output is not None else {}
            if binary:
                parameters["binary_data"] = True
            outputs.append({"name": name, **({"parameters": parameters} if parameters else {})})
        document["outputs"] = outputs
    header = orjson.dumps(document, option=_OPTIONS)
    if not chunks:
        return header, None
    return b"".join((header, *chunks)), len(header)


def decode_answer(
    body: bytes, json_length: int | None, wanted: Sequence[str]
) -> tuple[Tensor, ...]:
    """The outputs of an upstream's 200 answer, in ``wanted`` order (its own order if none)."""
    header: bytes | memoryview = body if json_length is None else memoryview(body)[:json_length]
    try:
        document = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise InvalidAnswer(f"not JSON: {exc}") from None
    raw_outputs = document.get("outputs") if type(document) is dict else None
    if type(raw_outputs) is not list:
        raise InvalidAnswer("no 'outputs' array")
    cursor = len(body) if json_length is None else json_length
    tensors = []
    try:
        for index, raw in enumerate(raw_outputs):
            tensor, cursor = decode_tensor(raw, index, body, cursor, json_length is not None)
            tensors.append(tensor)
    except BadRequest as exc:
        raise InvalidAnswer(str(exc).replace("input", "output", 1)) from None
    if not wanted:
        return tuple(tensors)
    by_name = {tensor.name: tensor for tensor in tensors}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise InvalidAnswer(f"no output {missing[0]!r} in the answer")
    return tuple(by_name[name] for name in wanted)


def error_message(body: bytes) -> str:
    """What an upstream's error answer says: v2's ``{"error": ...}``, else its text."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if type(document) is dict and isinstance(document.get("error"), str):
        return str(document["error"])
    if type(document) is dict and isinstance(document.get("detail"), str):
        return str(document["detail"])  # FastAPI's shape (MLServer, KServe)
    return " ".join(body.decode(errors="replace").split())[:500]
