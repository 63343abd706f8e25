"""A KServe ``ModelServer`` with one custom ``kserve.Model``, run by tests under KServe's own
interpreter (.local/kserve): ``y = 2 * x + 1`` on an FP32 input, counting its runs in a file.

    .local/kserve/bin/python kserve_affine.py HTTP_PORT GRPC_PORT COUNT_FILE
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class Affine(Model):  # type: ignore[misc]  # kserve ships no type hints
    def __init__(self, name: str, counts: Path) -> None:
        super().__init__(name)
        self.counts = counts
        self.load()

    def load(self) -> bool:
        self.ready = True
        return True

    async def predict(
        self, payload: InferRequest, headers: Any = None, response_headers: Any = None
    ) -> InferResponse:
        runs = int(self.counts.read_text() or 0) if self.counts.exists() else 0
        self.counts.write_text(str(runs + 1))
        x = payload.inputs[0].as_numpy()
        output = InferOutput(name="y", shape=list(x.shape), datatype="FP32")
        output.set_data_from_numpy((2 * x + 1).astype("float32"), binary_data=False)
        return InferResponse(
            model_name=self.name,
            infer_outputs=[output],
            response_id=payload.id or str(uuid.uuid4()),
        )


if __name__ == "__main__":
    http_port, grpc_port, counts = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    ModelServer(http_port=http_port, grpc_port=grpc_port, enable_grpc=False).start(
        [Affine("affine", counts)]
    )
