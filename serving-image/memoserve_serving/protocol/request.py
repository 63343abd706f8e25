"""Decode v2 inference requests (JSON and the binary tensor data extension) and check them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import orjson

from memoserve_serving.protocol.datatypes import DATATYPES
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.protocol.tensors import buffer_to_array, buffer_to_raw, json_to_raw
from memoserve_serving.protocol.types import InferenceRequest, RequestedOutput, Tensor

# Dimensions are int64 on the wire (and numpy cannot index beyond that).
_MAX_DIM = 2**63 - 1
# Numpy makes arrays of at most 64 dimensions. A longer shape is refused before anything
# multiplies its dimensions: the product of millions of them is a big-integer computation of
# minutes, on the event loop (a 400 KB body of [2, 2, ...] took 1.6 s, a 16 MiB one ~40 min).
MAX_RANK = 64
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
# Binary inputs up to this many bytes are copied out of the body (cheaper than an array view, and
# the cache key hashes the copy); larger ones become read-only views of the body.
_COPY_AT_MOST = 4096
_ABSENT: Any = object()
_from_raw = Tensor.from_raw


SCHEDULING_PARAMETERS = ("priority", "timeout")


def decode_request(body: bytes, json_length: int | None = None) -> InferenceRequest:
    """Decode a v2 infer request body; BadRequest naming the tensor for anything malformed.

    ``json_length`` is the Inference-Header-Content-Length header: the JSON is the body's first
    ``json_length`` bytes and the rest is binary tensor data, taken in order by the inputs that have
    ``parameters.binary_data_size``. JSON data and small binary data are kept as their binary
    tensor data encoding (``Tensor.from_raw``): a cache hit never makes an array, a miss makes a
    read-only one when the model reads ``Tensor.data``. Larger binary fixed-size inputs are
    read-only views of ``body`` from the start.
    """
    if json_length is None:
        header: bytes | memoryview = body
        binary_at = len(body)
    elif type(json_length) is not int or not 0 <= json_length <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {json_length!r} does not fit a body of "
            f"{len(body)} bytes"
        )
    else:
        header = memoryview(body)[:json_length]
        binary_at = json_length
    try:
        document = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if type(document) is not dict:
        raise BadRequest("request body must be a JSON object")
    get = document.get
    request_id = get("id")
    if request_id is not None and type(request_id) is not str:
        raise BadRequest("request 'id' must be a string")
    parameters = get("parameters")
    binary_outputs = False
    if parameters is None:
        parameters = {}
    elif type(parameters) is not dict:
        raise BadRequest("request 'parameters' must be an object")
    elif parameters:
        binary_outputs = bool(_pop_flag(parameters, "binary_data_output", "request"))
        # Scheduling hints (Triton's request parameters): they change when, never what, is
        # answered, so they must not split the cache.
        for hint in SCHEDULING_PARAMETERS:
            parameters.pop(hint, None)
    raw_inputs = get("inputs")
    if type(raw_inputs) is not list:
        raise BadRequest("request 'inputs' must be an array")
    inputs = []
    cursor = binary_at
    has_binary = json_length is not None
    for index, raw in enumerate(raw_inputs):
        tensor, cursor = decode_tensor(raw, index, body, cursor, has_binary)
        inputs.append(tensor)
    if cursor != len(body):
        raise BadRequest(
            f"request has {len(body) - cursor} bytes of binary data that no input claims"
        )
    if len(inputs) > 1 and len({tensor.name for tensor in inputs}) != len(inputs):
        raise BadRequest(f"input {_first_duplicate([t.name for t in inputs])!r} appears twice")
    raw_outputs = get("outputs")
    outputs = () if raw_outputs is None else _outputs(raw_outputs)
    return InferenceRequest(request_id, tuple(inputs), outputs, parameters, binary_outputs)


def decode_tensor(
    raw: Any, index: int, body: bytes, cursor: int, has_binary: bool
) -> tuple[Tensor, int]:
    """One tensor of a request's inputs (or a response's outputs) and where the binary data
    of the next one starts: ``raw`` is its JSON object, ``cursor`` where its binary data would."""
    if type(raw) is not dict:
        raise BadRequest(f"input #{index} must be an object")
    get = raw.get
    name = get("name")
    if type(name) is not str or not name:
        raise BadRequest(f"input #{index}: 'name' must be a non-empty string")
    datatype = get("datatype")
    if type(datatype) is not str or datatype not in DATATYPES:
        raise _bad(name, f"unknown datatype {datatype!r}")
    shape = get("shape")
    if type(shape) is not list:
        raise _bad(name, f"'shape' must be an array of integers, got {shape!r}")
    if len(shape) > MAX_RANK:
        raise _bad(name, f"shape has {len(shape)} dimensions, at most {MAX_RANK} are served")
    for dim in shape:
        if type(dim) is not int or not 0 <= dim <= _MAX_DIM:
            raise _bad_shape(name, shape)
    dims = tuple(shape)
    parameters = get("parameters")
    size = None
    if parameters is None:
        parameters = {}
    elif type(parameters) is not dict:
        raise _bad(name, "'parameters' must be an object")
    elif parameters:
        if not parameters.keys().isdisjoint(_SHARED_MEMORY):
            raise _bad(name, "shared memory is not supported, send the data in the request")
        size = parameters.pop("binary_data_size", None)
    try:
        if size is None:
            data = get("data", _ABSENT)
            if data is _ABSENT:
                raise _bad(name, "has neither 'data' nor parameters.binary_data_size")
            raw_data = json_to_raw(datatype, dims, data)
            return _from_raw(name, datatype, dims, raw_data, parameters), cursor
        if type(size) is not int or size < 0:
            raise _bad(name, "binary_data_size must be a non-negative integer")
        if "data" in raw:
            raise _bad(name, "has both 'data' and binary_data_size")
        if cursor + size > len(body):
            raise _bad(
                name,
                f"binary_data_size {size} exceeds the {len(body) - cursor} bytes of binary "
                "data left" + ("" if has_binary else " (no Inference-Header-Content-Length)"),
            )
        if size <= _COPY_AT_MOST:
            raw_data = buffer_to_raw(datatype, dims, body, cursor, size)
            return _from_raw(name, datatype, dims, raw_data, parameters), cursor + size
        data = buffer_to_array(datatype, dims, body, cursor, size)
        return Tensor(name, datatype, dims, data, parameters), cursor + size
    except (ValueError, OverflowError) as exc:
        raise _bad(name, str(exc)) from None


def _bad_shape(name: str, shape: list[Any]) -> BadRequest:
    if not all(type(dim) is int for dim in shape):
        return _bad(name, f"'shape' must be an array of integers, got {shape!r}")
    return _bad(name, f"shape {shape} has a negative or too large dimension")


def _bad(name: str, problem: str, kind: str = "input") -> BadRequest:
    return BadRequest(f"{kind} {name!r}: {problem}")


def _outputs(raw: Any) -> tuple[RequestedOutput, ...]:
    if raw is None:
        return ()
    if type(raw) is not list:
        raise BadRequest("request 'outputs' must be an array")
    outputs = []
    for index, item in enumerate(raw):
        name = _name(item, "output", index)
        parameters = _parameters(item.get("parameters"), name, "output")
        binary = _pop_flag(parameters, "binary_data", f"output {name!r}")
        outputs.append(RequestedOutput(name, binary, parameters))
    if len(outputs) > 1 and len({output.name for output in outputs}) != len(outputs):
        raise BadRequest(f"output {_first_duplicate([o.name for o in outputs])!r} requested twice")
    return tuple(outputs)


def _name(raw: Any, kind: str, index: int) -> str:
    if type(raw) is not dict:
        raise BadRequest(f"{kind} #{index} must be an object")
    name = raw.get("name")
    if type(name) is not str or not name:
        raise BadRequest(f"{kind} #{index}: 'name' must be a non-empty string")
    return name


def _parameters(raw: Any, name: str, kind: str = "input") -> dict[str, Any]:
    """A tensor's parameters object (ours to mutate: orjson built it for this request alone)."""
    if raw is None:
        return {}
    if type(raw) is not dict:
        raise _bad(name, "'parameters' must be an object", kind)
    if raw and not raw.keys().isdisjoint(_SHARED_MEMORY):
        raise _bad(name, "shared memory is not supported, send the data in the request", kind)
    return raw


def _pop_flag(parameters: dict[str, Any], key: str, where: str) -> bool | None:
    """Remove the transport-only boolean ``key`` (it never changes the answer) and return it."""
    if key not in parameters:
        return None
    value = parameters.pop(key)
    if type(value) is not bool:
        raise BadRequest(f"{where}: parameter {key} must be true or false")
    return value


def _first_duplicate(names: list[str]) -> str:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    raise AssertionError("no duplicate")


def validate_request(request: InferenceRequest, metadata: ModelMetadata) -> None:
    """BadRequest naming the tensor unless ``request`` fits the model's inputs and outputs."""
    inputs, outputs = _plan(metadata)
    for tensor in request.inputs:
        check = inputs.get(tensor.name)
        if check is None:
            known = ", ".join(repr(s.name) for s in metadata.inputs)
            raise BadRequest(f"unknown input {tensor.name!r}; the model's inputs are {known}")
        spec, rank, fixed, want = check
        if tensor.datatype != spec.datatype:
            raise BadRequest(
                f"input {tensor.name!r}: datatype {tensor.datatype}, the model expects "
                f"{spec.datatype}"
            )
        shape = tensor.shape
        if len(shape) != rank or (fixed is not None and fixed(shape) != want):
            raise BadRequest(
                f"input {tensor.name!r}: shape {list(shape)} does not fit the model's "
                f"shape {list(spec.shape)} (-1 = any size)"
            )
    if len(request.inputs) != len(metadata.inputs):
        given = {tensor.name for tensor in request.inputs}
        missing = next(spec.name for spec in metadata.inputs if spec.name not in given)
        raise BadRequest(f"missing input {missing!r}")
    _check_outputs(request, metadata, outputs)


# Input name -> (spec, rank, getter of the dimensions that are not -1 or None, what it must get).
_InputChecks = dict[str, tuple[TensorSpec, int, Callable[[Sequence[int]], Any] | None, Any]]
# id(metadata) -> (metadata, its checks); the metadata is kept, so its id cannot be reused.
_PLANS: dict[int, tuple[ModelMetadata, tuple[_InputChecks, frozenset[str]]]] = {}


def _plan(metadata: ModelMetadata) -> tuple[_InputChecks, frozenset[str]]:
    """What validate_request checks, looked up once per (immutable) metadata."""
    entry = _PLANS.get(id(metadata))
    if entry is not None and entry[0] is metadata:
        return entry[1]
    inputs: _InputChecks = {}
    for spec in metadata.inputs:
        fixed = [index for index, dim in enumerate(spec.shape) if dim != -1]
        want = tuple(spec.shape[index] for index in fixed)
        getter = itemgetter(*fixed) if fixed else None
        # itemgetter of one index returns the item, of several a tuple.
        inputs.setdefault(
            spec.name, (spec, len(spec.shape), getter, want[0] if len(fixed) == 1 else want)
        )
    plan = inputs, frozenset(spec.name for spec in metadata.outputs)
    if len(_PLANS) >= 8:
        _PLANS.clear()
    _PLANS[id(metadata)] = (metadata, plan)
    return plan


def validate_outputs(request: InferenceRequest, metadata: ModelMetadata) -> None:
    """BadRequest naming an output the model does not have."""
    _check_outputs(request, metadata, _plan(metadata)[1])


def _check_outputs(
    request: InferenceRequest, metadata: ModelMetadata, known: frozenset[str]
) -> None:
    for output in request.outputs:
        if output.name not in known:
            names = ", ".join(repr(s.name) for s in metadata.outputs)
            raise BadRequest(f"unknown output {output.name!r}; the model's outputs are {names}")
