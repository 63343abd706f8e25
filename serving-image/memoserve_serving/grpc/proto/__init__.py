"""The Open Inference Protocol's ``open_inference_grpc.proto`` (kserve/open-inference-protocol,
specification/protocol/, commit d49cc23), unchanged, and the stubs generated from it by
``serving-image/generate_grpc_stubs.py``: do not edit them, run the script."""
