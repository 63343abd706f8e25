"""memoserve's model server: KServe v2 / Open Inference Protocol with a Redis answer cache."""

__version__ = "0.1.0"

SERVER_NAME = "memoserve"  # v2 server metadata, over HTTP and gRPC
EXTENSIONS = ("binary_tensor_data",)  # the v2 extensions served (binary tensors over HTTP)
