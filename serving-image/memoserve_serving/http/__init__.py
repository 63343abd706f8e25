"""The v2 HTTP/REST transport: the infer hot path (``infer_handler``) served by uvicorn as a
plain ASGI handler (``infer_route``; ``server``, one write per response: ``http_protocol``) or by
granian over RSGI (``rsgi_app``, ``granian_server``), in front of the Starlette app for health,
metadata and ``/metrics`` (``app``); several workers (``workers``) and their metrics as the
pod's (``worker_metrics``). Beside ``grpc/``, over the same data plane.
"""
