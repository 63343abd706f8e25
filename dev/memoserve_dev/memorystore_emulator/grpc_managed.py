"""Memorystore for Valkey (``google.cloud.memorystore.v1.Memorystore``) and Memorystore for
Redis Cluster (``google.cloud.redis.cluster.v1.CloudRedisCluster``) over gRPC: generic handlers
with the proto-plus types' own (de)serializers, named after the flavor's kind (CreateInstance,
GetCluster, ...). Their operations are polled through google.longrunning.Operations
(:mod:`.grpc_api`), which knows every API's."""

from __future__ import annotations

from typing import Any

import grpc  # type: ignore[import-untyped]  # no stubs
from google.longrunning import operations_pb2  # type: ignore[import-untyped]

from memoserve_dev.memorystore_emulator.grpc_api import unary
from memoserve_dev.memorystore_emulator.managed import ManagedBackend

VALKEY_SERVICE = "google.cloud.memorystore.v1.Memorystore"
REDIS_CLUSTER_SERVICE = "google.cloud.redis.cluster.v1.CloudRedisCluster"


def managed_handler(service: str, backend: ManagedBackend) -> grpc.GenericRpcHandler:
    types = backend.flavor.types
    kind, collection = backend.flavor.kind, backend.flavor.collection
    field = kind.lower()  # the request's "instance" / "cluster", "instance_id" / "cluster_id"
    operation = operations_pb2.Operation.SerializeToString
    message: Any = getattr(types, kind)
    listed: Any = getattr(types, f"List{kind}sResponse")
    ca_method = backend.flavor.ca_method

    def request(name: str) -> Any:
        return getattr(types, f"{name}Request")

    methods = {
        f"Create{kind}": unary(
            lambda r: backend.create(r.parent, getattr(r, f"{field}_id"), getattr(r, field)),
            request(f"Create{kind}"),
            operation,
        ),
        f"Get{kind}": unary(
            lambda r: backend.get(r.name), request(f"Get{kind}"), message.serialize
        ),
        f"List{kind}s": unary(
            lambda r: listed(**{collection: backend.list_all(r.parent)}),
            request(f"List{kind}s"),
            listed.serialize,
        ),
        f"Update{kind}": unary(
            lambda r: backend.update(getattr(r, field), list(r.update_mask.paths)),
            request(f"Update{kind}"),
            operation,
        ),
        f"Delete{kind}": unary(
            lambda r: backend.delete(r.name), request(f"Delete{kind}"), operation
        ),
        ca_method: unary(
            lambda r: backend.certificate_authority(r.name),
            request(ca_method),
            types.CertificateAuthority.serialize,
        ),
    }
    return grpc.method_handlers_generic_handler(service, methods)


def managed_handlers(valkey: ManagedBackend, cluster: ManagedBackend) -> tuple[Any, ...]:
    return (
        managed_handler(VALKEY_SERVICE, valkey),
        managed_handler(REDIS_CLUSTER_SERVICE, cluster),
    )
