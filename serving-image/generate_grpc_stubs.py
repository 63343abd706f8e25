"""Generate the v2 gRPC stubs in memoserve_serving/grpc/proto/ from the committed .proto.

    .venv/bin/python serving-image/generate_grpc_stubs.py [--out DIR]

The .proto is the Open Inference Protocol's own ``open_inference_grpc.proto`` (package
``inference``, service ``GRPCInferenceService``), unchanged. The stubs are committed, and
``tests/serving/grpc/test_stubs.py`` runs this script and compares, so they cannot go stale;
grpcio-tools is pinned in the ``dev`` extra because its protoc decides the output.

One line of the generated ``_pb2.py`` is changed: its file goes into a descriptor pool of its
own instead of protobuf's default pool. Triton's client, KServe and MLServer each generate the
same ``inference.*`` messages into the default pool, and a second file defining them fails to
import ("duplicate symbol 'inference.ServerLiveRequest'"); with a pool of our own, the server
loads in a process that also holds any of them (the tests hold tritonclient.grpc).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = Path("memoserve_serving/grpc/proto/open_inference_grpc.proto")
STUBS = (
    "open_inference_grpc_pb2.py",
    "open_inference_grpc_pb2.pyi",
    "open_inference_grpc_pb2_grpc.py",
)
_DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = "_descriptor_pool.DescriptorPool().AddSerializedFile("


def generate(out: Path) -> list[Path]:
    """Write the stubs under ``out`` (a directory standing for serving-image/); their paths."""
    from grpc_tools import protoc  # the dev extra: not in the serving image

    target = out / PROTO.parent
    target.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{HERE}",
        f"-I{protoc_include()}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(HERE / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")
    module = target / STUBS[0]
    text = module.read_text()
    if text.count(_DEFAULT_POOL) != 1:
        raise SystemExit(f"{module}: expected one file added to the default descriptor pool")
    module.write_text(text.replace(_DEFAULT_POOL, _OWN_POOL))
    return [target / name for name in STUBS]


def protoc_include() -> Path:
    """grpcio-tools' copy of protobuf's well-known .proto files."""
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="default: serving-image/")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
