"""``ModelInferRequest`` -> the data plane's ``InferenceRequest``, and its answer -> a
``ModelInferResponse``.

The decoded request is the one the HTTP decoder would make of the same question: tensors in
the binary tensor data encoding, parameters as the same Python values (bool, int, str, float),
the same transport-only parameters dropped. So ``cache.keys`` gives REST and gRPC one key.
Anything malformed is a ``BadRequest`` naming the tensor (INVALID_ARGUMENT).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memoserve_serving.grpc.contents import (
    FIELDS,
    fill_contents,
    from_contents,
    from_raw_contents,
    raw_bytes,
)
from memoserve_serving.grpc.proto.open_inference_grpc_pb2 import (
    InferParameter,
    ModelInferRequest,
    ModelInferResponse,
)
from memoserve_serving.protocol.datatypes import DATATYPES
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.request import MAX_RANK, SCHEDULING_PARAMETERS
from memoserve_serving.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    Tensor,
)

_SHARED_MEMORY = frozenset(
    {"shared_memory_region", "shared_memory_byte_size", "shared_memory_offset"}
)
# Transport-only parameters of the HTTP binary extension: a gRPC client has no use for them,
# but one that sends them must get the key an HTTP client gets (which never includes them).
_REQUEST_TRANSPORT = ("binary_data_output", *SCHEDULING_PARAMETERS)


def decode_request(message: ModelInferRequest) -> tuple[InferenceRequest, bool]:
    """The request, and whether it sent raw contents (then the answer is raw too, as Triton's
    client expects: it reads outputs from ``raw_output_contents`` only)."""
    raw_contents = message.raw_input_contents
    raw = len(raw_contents) > 0
    if raw and len(raw_contents) != len(message.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw_contents)} entries for {len(message.inputs)} "
            "inputs: one per input, in order"
        )
    inputs = []
    names: set[str] = set()
    for index, tensor in enumerate(message.inputs):
        name = tensor.name
        if not name:
            raise BadRequest(f"input #{index}: 'name' must be a non-empty string")
        if name in names:
            raise BadRequest(f"input {name!r} appears twice")
        names.add(name)
        inputs.append(_input(tensor, raw_contents[index] if raw else None))
    outputs = []
    wanted: set[str] = set()
    for index, output in enumerate(message.outputs):
        name = output.name
        if not name:
            raise BadRequest(f"output #{index}: 'name' must be a non-empty string")
        if name in wanted:
            raise BadRequest(f"output {name!r} requested twice")
        wanted.add(name)
        parameters = _parameters(output.parameters, f"output {name!r}")
        parameters.pop("binary_data", None)
        outputs.append(RequestedOutput(name, None, parameters))
    parameters = _parameters(message.parameters, "request")
    for key in _REQUEST_TRANSPORT:
        parameters.pop(key, None)
    request = InferenceRequest(
        message.id or None,
        tuple(inputs),
        tuple(outputs),
        parameters,
        # Outputs travel as tensors, never as the HTTP response's JSON array: this makes the
        # data plane hand over tensors on a cache hit too.
        binary_outputs=True,
    )
    return request, raw


def _input(tensor: ModelInferRequest.InferInputTensor, raw: bytes | None) -> Tensor:
    name, datatype = tensor.name, tensor.datatype
    if datatype not in DATATYPES:
        raise _bad(name, f"unknown datatype {datatype!r}")
    if len(tensor.shape) > MAX_RANK:  # before anything multiplies them: see MAX_RANK
        raise _bad(name, f"shape has {len(tensor.shape)} dimensions, at most {MAX_RANK} are served")
    shape = tuple(tensor.shape)
    if any(dim < 0 for dim in shape):
        raise _bad(name, f"shape {list(shape)} has a negative dimension")
    parameters = _parameters(tensor.parameters, f"input {name!r}")
    if not _SHARED_MEMORY.isdisjoint(parameters):
        raise _bad(name, "shared memory is not supported, send the data in the request")
    parameters.pop("binary_data_size", None)
    try:
        if raw is None:
            return from_contents(name, datatype, shape, tensor.contents, parameters)
        if tensor.HasField("contents"):
            raise _bad(name, "has both contents and raw_input_contents")
        return from_raw_contents(name, datatype, shape, raw, parameters)
    except (ValueError, OverflowError) as exc:
        raise _bad(name, str(exc)) from None


def _bad(name: str, problem: str) -> BadRequest:
    return BadRequest(f"input {name!r}: {problem}")


def _parameters(parameters: Mapping[str, InferParameter], where: str) -> dict[str, Any]:
    """A parameters map as the Python values a JSON request would carry."""
    decoded: dict[str, Any] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is None:
            raise BadRequest(f"{where}: parameter {key!r} has no value")
        decoded[key] = getattr(parameter, choice)
    return decoded


def encode_response(response: InferenceResponse, raw: bool) -> ModelInferResponse:
    """The response message: outputs in ``raw_output_contents`` when ``raw`` (or when some output
    has no typed contents field, such as FP16: the two cannot be mixed), else typed."""
    message = ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    fill_parameters(message.parameters, response.parameters)
    outputs = response.outputs
    if not raw:
        raw = any(tensor.datatype not in FIELDS for tensor in outputs)
    for tensor in outputs:
        output = message.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        fill_parameters(output.parameters, tensor.parameters)
        if raw:
            message.raw_output_contents.append(raw_bytes(tensor))
        else:
            fill_contents(output.contents, tensor)
    return message


def fill_parameters(target: Any, parameters: Mapping[str, Any]) -> None:
    """Response or output parameters (the model's: scalars; anything else as its string)."""
    for key, value in parameters.items():
        parameter = target[key]
        if isinstance(value, bool):
            parameter.bool_param = value
        elif isinstance(value, int):
            if value < 2**63:
                parameter.int64_param = value
            else:
                parameter.uint64_param = value
        elif isinstance(value, float):
            parameter.double_param = value
        else:
            parameter.string_param = value if isinstance(value, str) else str(value)
