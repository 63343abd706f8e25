"""memoserve's model server: KServe v2 / Open Inference Protocol with a Redis answer cache."""

__version__ = "0.1.0"
