"""The v2 gRPC transport: ``inference.GRPCInferenceService`` and ``grpc.health.v1`` on their own
port, in front of the same data plane (and so the same cache) as the HTTP transport.

``codec`` turns the protobuf messages into the data plane's ``InferenceRequest`` and back,
``servicer`` answers the RPCs, ``health`` the Kubernetes probes, ``server`` runs the grpc.aio
server on the HTTP server's event loop. ``proto/`` holds the Open Inference Protocol's .proto
and the stubs generated from it.
"""
