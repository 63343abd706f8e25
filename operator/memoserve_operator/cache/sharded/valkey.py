"""Memorystore for Valkey (``google.cloud.memorystore_v1``) for ``sharded.google``: the
client, and ``ShardedInstance`` <-> ``memorystore_v1.Instance``."""

from __future__ import annotations

from typing import Any

from google.cloud import memorystore_v1
from google.cloud.memorystore_v1.services.memorystore.transports import (
    MemorystoreGrpcAsyncIOTransport,
)

from memoserve_operator.cache import grpc_client
from memoserve_operator.cache.sharded.api import (
    AUTH_DISABLED,
    DISABLED,
    IAM_AUTH,
    SERVER_AUTHENTICATION,
    VALKEY,
    ShardedInstance,
)
from memoserve_operator.cache.sharded.google import Dialect, GoogleSharded, managed_ca_certs

Instance = memorystore_v1.Instance
AUTH = {IAM_AUTH: "IAM_AUTH", AUTH_DISABLED: "AUTH_DISABLED"}
TRANSIT = {SERVER_AUTHENTICATION: "SERVER_AUTHENTICATION", DISABLED: "TRANSIT_ENCRYPTION_DISABLED"}
DISCOVERY = memorystore_v1.ConnectionType.CONNECTION_TYPE_DISCOVERY


def to_proto(instance: ShardedInstance) -> Instance:
    """A desired instance as the API takes it (defaults left unset)."""
    fields: dict[str, Any] = {
        "name": instance.name,
        "shard_count": instance.shard_count,
        "authorization_mode": getattr(
            Instance.AuthorizationMode, AUTH[instance.authorization_mode]
        ),
        "transit_encryption_mode": getattr(
            Instance.TransitEncryptionMode, TRANSIT[instance.transit_encryption_mode]
        ),
        "engine_configs": dict(instance.configs),
        "labels": dict(instance.labels),
        "deletion_protection_enabled": False,  # the operator deletes per deletionPolicy
    }
    if instance.replica_count is not None:
        fields["replica_count"] = instance.replica_count
    if instance.node_type:
        fields["node_type"] = getattr(Instance.NodeType, instance.node_type.removeprefix("REDIS_"))
    if instance.engine_version:
        fields["engine_version"] = instance.engine_version
    if instance.mode:
        fields["mode"] = getattr(Instance.Mode, instance.mode)
    if instance.network:
        project = instance.name.split("/")[1]  # the endpoints live in the instance's project
        connection = memorystore_v1.PscAutoConnection(network=instance.network, project_id=project)
        fields["psc_auto_connections"] = [connection]
    return Instance(**fields)


def _discovery(found: Instance) -> tuple[str, int]:
    for endpoint in found.discovery_endpoints:
        return endpoint.address, endpoint.port
    # Newer instances may only fill ``endpoints``: its discovery connection.
    for instance_endpoint in found.endpoints:
        for connection in instance_endpoint.connections:
            auto = connection.psc_auto_connection
            if auto.connection_type == DISCOVERY and auto.ip_address:
                return auto.ip_address, auto.port
    return "", 0


def from_proto(found: Instance) -> ShardedInstance:
    auth = {v: k for k, v in AUTH.items()}.get(found.authorization_mode.name, "")
    transit = {v: k for k, v in TRANSIT.items()}.get(found.transit_encryption_mode.name, "")
    address, port = _discovery(found)
    networks = [c.network for c in found.psc_auto_connections if c.network]
    return ShardedInstance(
        engine=VALKEY,
        name=found.name,
        shard_count=found.shard_count,
        replica_count=found.replica_count,
        node_type=found.node_type.name if found.node_type else "",
        engine_version=found.engine_version,
        mode=found.mode.name if found.mode else "",
        configs=dict(found.engine_configs),
        authorization_mode=auth or found.authorization_mode.name,
        transit_encryption_mode=transit or found.transit_encryption_mode.name,
        network=networks[0] if networks else "",
        labels=dict(found.labels),
        state=found.state.name,
        discovery_address=address,
        discovery_port=port,
    )


DIALECT = Dialect(
    get="get_instance",
    create="create_instance",
    update="update_instance",
    delete="delete_instance",
    get_ca="get_certificate_authority",
    message="instance",
    id_argument="instance_id",
    paths={"configs": "engine_configs"},
    to_proto=to_proto,
    from_proto=from_proto,
    ca_certs=managed_ca_certs,
)


async def open_valkey(endpoint: str | None) -> GoogleSharded:
    """The real client: Google's endpoint with ADC, or an emulator's without credentials."""
    if endpoint:
        channel = grpc_client.emulator_channel(endpoint)
        transport = MemorystoreGrpcAsyncIOTransport(channel=channel)
        return GoogleSharded(
            memorystore_v1.MemorystoreAsyncClient(transport=transport), DIALECT, None
        )
    credentials, project = await grpc_client.default_credentials()
    client = memorystore_v1.MemorystoreAsyncClient(
        credentials=credentials, transport="grpc_asyncio"
    )
    return GoogleSharded(client, DIALECT, project)
