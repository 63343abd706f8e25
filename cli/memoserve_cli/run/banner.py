"""What ``memoserve run`` prints once it listens: what runs, and a curl that works with it
(and a grpcurl, when the spec turns gRPC on).

The example request is built from the loaded model's own metadata (input names, datatypes,
shapes; a variable dimension becomes 1) with plausible values, so it is valid for any model.
"""

from __future__ import annotations

import base64
import json
import math
import shlex
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any

from memoserve_serving.grpc.contents import FIELDS
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec

# Values for the example tensors, cycled: feature-like numbers (iris's first flower, as it
# happens, so the quickstart prints the README's request).
_FLOATS = (5.1, 3.5, 1.4, 0.2)
_INTS = (1, 2, 3, 4)
_BOOLS = (True, False)
_TEXT = ("hello",)
MAX_INLINE_CHARS = 2000  # a longer request body goes to a file: curl -d @FILE


@dataclass(frozen=True)
class RunSummary:
    """What the banner reports."""

    service: str  # namespace/name of the InferenceService
    file: str
    model: str  # the v2 model name
    where: str  # "FORMAT, URI", or "cache front of URL"
    digest: str
    cache: str
    url: str  # the server's base URL
    cache_enabled: bool
    grpc_target: str | None = None  # HOST:PORT of the plaintext gRPC port, when it is on
    canary: str | None = None  # "10% of requests: FORMAT, URI" (spec.canary)


def example_request(metadata: ModelMetadata) -> str:
    """A v2 infer request body (compact JSON) for ``metadata``'s inputs."""
    body = {"inputs": [_example_input(spec) for spec in metadata.inputs]}
    return json.dumps(body, separators=(",", ":"))


def _example_input(spec: TensorSpec) -> dict[str, Any]:
    shape = [1 if dim < 0 else dim for dim in spec.shape]
    count = math.prod(shape)
    values: tuple[Any, ...]
    if spec.datatype.startswith("FP"):
        values = _FLOATS
    elif spec.datatype == "BOOL":
        values = _BOOLS
    elif spec.datatype == "BYTES":
        values = _TEXT
    else:  # INT*, UINT*
        values = _INTS
    data = list(islice(cycle(values), count))
    return {"name": spec.name, "shape": shape, "datatype": spec.datatype, "data": data}


def curl_command(infer_url: str, body: str, body_file: str | None = None) -> str:
    """A ready-to-paste curl for ``body`` (or for ``body_file``, which holds it)."""
    data = "@" + body_file if body_file is not None else body
    return (
        f"curl -si {shlex.quote(infer_url)} -H 'Content-Type: application/json' \\\n"
        f"    -d {shlex.quote(data)}"
    )


def grpc_request(model: str, body: str) -> str | None:
    """``body`` (a v2 JSON infer request) as a ModelInferRequest in protobuf's JSON mapping,
    typed contents; None when a datatype has no typed contents (FP16, BF16 travel raw)."""
    inputs = []
    for tensor in json.loads(body)["inputs"]:
        field = FIELDS.get(tensor["datatype"])
        if field is None:
            return None
        data = tensor["data"]
        if tensor["datatype"] == "BYTES":  # protobuf JSON writes bytes as base64
            data = [base64.b64encode(str(value).encode()).decode() for value in data]
        typed = {key: value for key, value in tensor.items() if key != "data"}
        inputs.append(typed | {"contents": {field: data}})
    request = {"model_name": model, "inputs": inputs}
    return json.dumps(request, separators=(",", ":"))


def grpcurl_command(target: str, request: str) -> str:
    """A ready-to-paste grpcurl (reflection: no .proto needed; -v shows the trailers)."""
    return (
        f"grpcurl -plaintext -v -d {shlex.quote(request)} \\\n"
        f"    {shlex.quote(target)} inference.GRPCInferenceService/ModelInfer"
    )


def banner(summary: RunSummary, curl: str, grpcurl: str | None = None) -> str:
    if summary.canary is not None:
        expect = "X-Memoserve-Version says which version answered, X-Memoserve-Cache whether "
        expect += "from its own cache" if summary.cache_enabled else "it was cached (off)"
    elif summary.cache_enabled:
        expect = "the first call is a miss, the second a hit: see X-Memoserve-Cache"
    else:
        expect = "uncached: X-Memoserve-Cache: off"
    versions = [f"  canary  {summary.canary}"] if summary.canary is not None else []
    digest = [f"  digest  sha256:{summary.digest[:16]}"] if summary.digest else []
    return "\n".join(
        [
            f"memoserve run: InferenceService {summary.service} from {summary.file}",
            f"  model   {summary.model} ({summary.where})",
            *versions,
            *digest,
            f"  cache   {summary.cache}",
            f"  url     {summary.url}/v2/models/{summary.model}",
            f"try it ({expect}):",
            "  " + curl.replace("\n", "\n  "),
            *_grpc_lines(summary, grpcurl),
            "Ctrl-C stops it.",
        ]
    )


def _grpc_lines(summary: RunSummary, grpcurl: str | None) -> list[str]:
    if summary.grpc_target is None:
        return []
    lines = [
        f"or over gRPC at {summary.grpc_target} (the same cache: a hit; -v shows the "
        "x-memoserve-cache trailer):"
    ]
    if grpcurl is not None:
        lines.append("  " + grpcurl.replace("\n", "\n  "))
    return lines
