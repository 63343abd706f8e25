"""The v2 HTTP/REST transport: uvicorn (``server``, ``workers``) with one write per response
(``http_protocol``), the infer hot path as a plain ASGI handler (``infer_route``) in front of the
Starlette app for health, metadata and ``/metrics`` (``app``), several workers' metrics as the
pod's (``worker_metrics``). Beside ``grpc/``, over the same data plane.
"""
