"""Memorystore for Valkey (``google.cloud.memorystore_v1``) for ``sharded.google``: the
client, and ``ShardedInstance`` <-> ``memorystore_v1.Instance``."""

from __future__ import annotations

from google.cloud import memorystore_v1
from google.cloud.memorystore_v1.services.memorystore.transports import (
    MemorystoreGrpcAsyncIOTransport,
)

from memoserve_operator.cache.sharded.api import (
    AUTH_DISABLED,
    DISABLED,
    IAM_AUTH,
    SERVER_AUTHENTICATION,
    VALKEY,
    ShardedInstance,
)
from memoserve_operator.cache.sharded.google import (
    Dialect,
    GoogleSharded,
    Names,
    common_from_proto,
    common_to_proto,
    open_sharded,
)

Instance = memorystore_v1.Instance
NAMES = Names(
    Instance.AuthorizationMode,
    Instance.TransitEncryptionMode,
    {IAM_AUTH: "IAM_AUTH", AUTH_DISABLED: "AUTH_DISABLED"},
    {SERVER_AUTHENTICATION: "SERVER_AUTHENTICATION", DISABLED: "TRANSIT_ENCRYPTION_DISABLED"},
)
DISCOVERY = memorystore_v1.ConnectionType.CONNECTION_TYPE_DISCOVERY


def to_proto(instance: ShardedInstance) -> Instance:
    """A desired instance as the API takes it (defaults left unset)."""
    fields = common_to_proto(instance, NAMES)
    fields["engine_configs"] = dict(instance.configs)
    fields["labels"] = dict(instance.labels)
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
    address, port = _discovery(found)
    connections = found.psc_auto_connections
    networks = [c.network for c in connections if c.network]
    return ShardedInstance(
        engine=VALKEY,
        node_type=found.node_type.name if found.node_type else "",
        engine_version=found.engine_version,
        mode=found.mode.name if found.mode else "",
        configs=dict(found.engine_configs),
        network=networks[0] if networks else "",
        labels=dict(found.labels),
        discovery_address=address,
        discovery_port=port,
        node_addresses=tuple(c.ip_address for c in connections if c.ip_address),
        **common_from_proto(found, NAMES),
    )


DIALECT = Dialect(
    "instance",
    "get_certificate_authority",
    "engine_configs",
    to_proto,
    from_proto,
    memorystore_v1.MemorystoreAsyncClient,
    MemorystoreGrpcAsyncIOTransport,
)


async def open_valkey(endpoint: str | None) -> GoogleSharded:
    return await open_sharded(endpoint, DIALECT)
