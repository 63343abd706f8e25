"""KServe's own gRPC client against a memoserve server; run by test_kserve_client.py under
``.local/kserve/bin/python`` (``make tools``), never imported by the tests.

    kserve_client.py HOST:PORT MODEL INPUT

Asks readiness, the model's metadata (through kserve's generated stubs: ``InferenceGRPCClient``
has no metadata call), then infers the same row twice with typed contents (``InferInput`` with a
list) and another row twice with raw contents (``set_data_from_numpy``), and one bad request.
Prints one JSON object on stdout for the test to check.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import grpc
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as kserve_pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

TYPED_ROW = [1.0, 2.0, 3.0, 4.0]
RAW_ROW = [9.0, 8.0, 7.0, 6.0]


def outputs(response: Any) -> dict[str, Any]:
    return {
        output.name: {
            "datatype": output.datatype,
            "shape": list(output.shape),
            "data": output.as_numpy().tolist(),
        }
        for output in response.outputs
    }


async def metadata(target: str, model: str) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(target) as channel:
        answer = await GRPCInferenceServiceStub(channel).ModelMetadata(
            kserve_pb.ModelMetadataRequest(name=model), timeout=10
        )
    return {
        "name": answer.name,
        "platform": answer.platform,
        "inputs": [[t.name, t.datatype, list(t.shape)] for t in answer.inputs],
        "outputs": [t.name for t in answer.outputs],
    }


async def main(target: str, model: str, input_name: str) -> dict[str, Any]:
    report: dict[str, Any] = {"metadata": await metadata(target, model)}
    async with InferenceGRPCClient(target, timeout=10, retries=0) as client:
        report["server_live"] = await client.is_server_live()
        report["server_ready"] = await client.is_server_ready()
        report["model_ready"] = await client.is_model_ready(model)
        for kind in ("typed", "raw"):
            answers = []
            for call in (1, 2):
                if kind == "typed":
                    tensor = InferInput(input_name, [1, 4], "FP32", data=TYPED_ROW)
                else:
                    tensor = InferInput(input_name, [1, 4], "FP32")
                    tensor.set_data_from_numpy(np.array([RAW_ROW], dtype=np.float32))
                request = InferRequest(model, [tensor], request_id=f"{kind}-{call}")
                response = await client.infer(request)
                answers.append({"id": response.id, "outputs": outputs(response)})
            report[kind] = answers
        bad = InferInput(input_name, [1, 3], "FP32", data=[1.0, 2.0, 3.0])
        try:
            await client.infer(InferRequest(model, [bad]))
            report["bad"] = None
        except grpc.aio.AioRpcError as error:
            report["bad"] = {"code": error.code().name, "details": error.details()}
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
