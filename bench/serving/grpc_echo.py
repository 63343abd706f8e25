"""The gRPC ceiling: a grpc.aio server whose ModelInfer returns a fixed, pre-serialized answer.

    python bench/serving/grpc_echo.py PORT

No protobuf parsing, no data plane: what grpc.aio itself costs per unary call on this machine,
as raw_asgi.py is for HTTP. Run on uvloop, as memoserve is.
"""

from __future__ import annotations

import sys
from typing import Any

import grpc  # type: ignore[import-untyped]  # no stubs
import uvloop

from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as pb

METHOD = "/inference.GRPCInferenceService/ModelInfer"


def fixed_answer() -> bytes:
    response = pb.ModelInferResponse(model_name="iris", id="")
    output = response.outputs.add(name="label", datatype="INT64", shape=[1])
    output.contents.int64_contents.append(0)
    return bytes(response.SerializeToString())


async def serve(port: int) -> None:
    answer = fixed_answer()

    async def infer(request: bytes, context: Any) -> bytes:
        return answer

    handler = grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {"ModelInfer": grpc.unary_unary_rpc_method_handler(infer)},  # bytes in, bytes out
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
