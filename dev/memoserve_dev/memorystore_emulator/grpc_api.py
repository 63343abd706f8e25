"""The emulator over gRPC: ``google.cloud.redis.v1.CloudRedis`` and
``google.longrunning.Operations`` (of every API the emulator serves), as google-cloud-redis's
clients call them (the operator's async client, and the sync client with transport="grpc").
Memorystore for Valkey and Redis Cluster join them on the same port (:mod:`.grpc_managed`).

google-cloud-redis ships proto-plus types but no servicer stubs: generic handlers with each
type's own (de)serializer do the same job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc  # type: ignore[import-untyped]  # no stubs
from google.cloud import redis_v1
from google.longrunning import operations_pb2  # type: ignore[import-untyped]
from google.protobuf import empty_pb2  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator.backend import Backend
from memoserve_dev.memorystore_emulator.faults import ApiError

REDIS_SERVICE = "google.cloud.redis.v1.CloudRedis"
OPERATIONS_SERVICE = "google.longrunning.Operations"

Handler = Callable[[Any], Any]


def unary(
    handler: Handler, request: Any, serialize: Callable[[Any], bytes]
) -> grpc.RpcMethodHandler:
    async def call(message: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            result = handler(message)
            return await result if isinstance(result, Awaitable) else result
        except ApiError as exc:
            await context.abort(grpc.StatusCode[exc.code], exc.message)

    deserialize = getattr(request, "deserialize", None) or request.FromString
    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=deserialize, response_serializer=serialize
    )


def handlers(backend: Backend) -> tuple[grpc.GenericRpcHandler, ...]:
    operation = operations_pb2.Operation.SerializeToString
    instance = redis_v1.Instance.serialize
    redis = {
        "GetInstance": unary(
            lambda r: backend.get_instance(r.name), redis_v1.GetInstanceRequest, instance
        ),
        "ListInstances": unary(
            lambda r: redis_v1.ListInstancesResponse(instances=backend.list_instances(r.parent)),
            redis_v1.ListInstancesRequest,
            redis_v1.ListInstancesResponse.serialize,
        ),
        "GetInstanceAuthString": unary(
            lambda r: redis_v1.InstanceAuthString(auth_string=backend.get_auth_string(r.name)),
            redis_v1.GetInstanceAuthStringRequest,
            redis_v1.InstanceAuthString.serialize,
        ),
        "CreateInstance": unary(
            lambda r: backend.create_instance(r.parent, r.instance_id, r.instance),
            redis_v1.CreateInstanceRequest,
            operation,
        ),
        "UpdateInstance": unary(
            lambda r: backend.update_instance(r.instance, list(r.update_mask.paths)),
            redis_v1.UpdateInstanceRequest,
            operation,
        ),
        "UpgradeInstance": unary(
            lambda r: backend.upgrade_instance(r.name, r.redis_version),
            redis_v1.UpgradeInstanceRequest,
            operation,
        ),
        "DeleteInstance": unary(
            lambda r: backend.delete_instance(r.name), redis_v1.DeleteInstanceRequest, operation
        ),
    }
    operations = {
        "GetOperation": unary(
            lambda r: backend.get_operation(r.name), operations_pb2.GetOperationRequest, operation
        ),
        "DeleteOperation": unary(
            lambda r: backend.delete_operation(r.name),
            operations_pb2.DeleteOperationRequest,
            empty_pb2.Empty.SerializeToString,
        ),
        "ListOperations": unary(
            lambda r: operations_pb2.ListOperationsResponse(
                operations=backend.list_operations(r.name)
            ),
            operations_pb2.ListOperationsRequest,
            operations_pb2.ListOperationsResponse.SerializeToString,
        ),
    }
    return (
        grpc.method_handlers_generic_handler(REDIS_SERVICE, redis),
        grpc.method_handlers_generic_handler(OPERATIONS_SERVICE, operations),
    )


async def start_grpc(
    backend: Backend, host: str, port: int, more: tuple[grpc.GenericRpcHandler, ...] = ()
) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server (``more``: other APIs' handlers); its port (0: a free one)."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(handlers(backend) + more)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
