"""The committed gRPC stubs are exactly what the generator makes of the committed .proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "serving-image/generate_grpc_stubs.py"
PROTO_DIR = "memoserve_serving/grpc/proto"
STUBS = (
    "open_inference_grpc_pb2.py",
    "open_inference_grpc_pb2.pyi",
    "open_inference_grpc_pb2_grpc.py",
)


def test_regenerating_the_stubs_changes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in STUBS:
        committed = (ROOT / "serving-image" / PROTO_DIR / name).read_bytes()
        fresh = (tmp_path / PROTO_DIR / name).read_bytes()
        assert fresh == committed, f"{name} is stale: run serving-image/generate_grpc_stubs.py"


def test_the_messages_live_in_a_pool_of_their_own() -> None:
    # Triton's client defines the same inference.* messages in the default pool: both load.
    import tritonclient.grpc.service_pb2 as triton
    from google.protobuf import descriptor_pool

    from memoserve_serving.grpc.proto import open_inference_grpc_pb2 as ours

    assert ours.DESCRIPTOR.pool is not descriptor_pool.Default()
    message = ours.ModelInferRequest(model_name="m", raw_input_contents=[b"\x00"])
    assert triton.ModelInferRequest.FromString(message.SerializeToString()).model_name == "m"
