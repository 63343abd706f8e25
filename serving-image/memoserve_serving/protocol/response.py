"""Encode v2 inference responses: JSON, plus the binary tensor data extension when asked for."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson

from memoserve_serving.protocol.tensors import json_data, tensor_bytes
from memoserve_serving.protocol.types import InferenceRequest, InferenceResponse, Tensor

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode_response(
    response: InferenceResponse, request: InferenceRequest
) -> tuple[bytes, int | None]:
    """The response body and, when some output is binary, the JSON header's length.

    An output is binary when its requested output says ``binary_data``, or says nothing and the
    request set ``binary_data_output``. JSON data is flat (row-major). A BYTES output asked for as
    JSON whose elements are not all UTF-8 is sent binary instead: JSON strings cannot carry it
    losslessly, and clients read each output by its own ``binary_data_size``. NaN and infinities
    of JSON float outputs become ``null`` (JSON has no such numbers); ask for binary to keep them.
    """
    outputs_json = response.outputs_json
    if outputs_json is not None and not wants_binary(request):
        # The common case on a cache hit: splice the pre-encoded outputs in, after the model's
        # own head (encoded once), the id and any parameters.
        parts = [_head(response.model_name, response.model_version)]
        if response.id is not None:
            parts += (b',"id":', orjson.dumps(response.id))
        if response.parameters:
            parts += (b',"parameters":', orjson.dumps(response.parameters))
        parts += (b',"outputs":', outputs_json, b"}")
        return b"".join(parts), None
    document: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version is not None:
        document["model_version"] = response.model_version
    if response.id is not None:
        document["id"] = response.id
    if response.parameters:
        document["parameters"] = response.parameters
    binary = _binary_choices(request)
    chunks: list[bytes] = []
    outputs = []
    for tensor in response.outputs:
        data = None
        if not binary.get(tensor.name, request.binary_outputs):
            data = json_data(tensor.datatype, tensor.data)
        if data is not None:
            outputs.append(_output(tensor, data=data))
        else:
            raw = tensor_bytes(tensor.datatype, tensor.data)
            chunks.append(raw)
            outputs.append(
                _output(tensor, parameters={**tensor.parameters, "binary_data_size": len(raw)})
            )
    document["outputs"] = outputs
    header = orjson.dumps(document, option=_OPTIONS)
    if not chunks:
        return header, None
    return b"".join((header, *chunks)), len(header)


@lru_cache(maxsize=64)
def _head(model_name: str, model_version: str | None) -> bytes:
    """The start of every response of one model: ``{"model_name":...[,"model_version":...]``."""
    document = {"model_name": model_name}
    if model_version is not None:
        document["model_version"] = model_version
    return orjson.dumps(document)[:-1]


def wants_binary(request: InferenceRequest) -> bool:
    """Whether any output may be asked for as binary tensor data."""
    if request.binary_outputs:
        return True
    # A loop, not any(): building the generator costs more than the usual empty loop, per hit.
    for output in request.outputs:  # noqa: SIM110
        if output.binary:
            return True
    return False


def encode_outputs_json(outputs: Sequence[Tensor]) -> bytes | None:
    """The JSON ``outputs`` array of an all-JSON response; None if some output cannot be JSON."""
    encoded = []
    for tensor in outputs:
        data = json_data(tensor.datatype, tensor.data)
        if data is None:
            return None
        encoded.append(_output(tensor, data=data))
    return orjson.dumps(encoded, option=_OPTIONS)


def _binary_choices(request: InferenceRequest) -> dict[str, bool]:
    """Output name -> binary, for the outputs that chose for themselves."""
    return {out.name: out.binary for out in request.outputs if out.binary is not None}


def _output(
    tensor: Tensor, *, data: Any = None, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    output: dict[str, Any] = {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": tensor.shape,
    }
    if parameters is not None:
        output["parameters"] = parameters
    elif tensor.parameters:
        output["parameters"] = tensor.parameters
    if data is not None:
        output["data"] = data
    return output
