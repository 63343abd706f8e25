"""Memorystore for Valkey (``google.cloud.memorystore.v1.Memorystore``): its instances' rules,
defaults and endpoints, as a :class:`~memoserve_dev.memorystore_emulator.managed.Flavor`.

Mode CLUSTER (the default) is a real Redis Cluster of shard_count primaries; CLUSTER_DISABLED
one primary and its replicas without cluster mode. AUTH: IAM_AUTH nodes take any token (the
emulator cannot check Google's), AUTH_DISABLED nodes want none; TOKEN_AUTH is not emulated.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from google.cloud import memorystore_v1

from memoserve_dev.memorystore_emulator import sharded_validate as rules
from memoserve_dev.memorystore_emulator.nodes import NodeSpec
from memoserve_dev.memorystore_emulator.psc import VALKEY_SERVICE_CLASS, network_path

Instance = memorystore_v1.Instance
Enums: Any = Instance  # proto-plus enums: members are ints to mypy
Connection: Any = memorystore_v1.ConnectionType
INSTANCE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,61}[a-z0-9]$")
VERSIONS = ("VALKEY_7_2", "VALKEY_8_0", "VALKEY_9_0")
NODE_GB = {"SHARED_CORE_NANO": 1.4, "STANDARD_SMALL": 6.5, "HIGHMEM_MEDIUM": 13.0}
UPDATABLE = {
    "labels": "labels",
    "replica_count": "replica_count",
    "shard_count": "shard_count",
    "engine_configs": "engine_configs",
    "node_type": "node_type",
    "engine_version": "engine_version",
    "deletion_protection_enabled": "deletion_protection_enabled",
}


def _auto_connections(instance: Instance) -> list[Any]:
    """The PSC auto connections asked for: the deprecated field's and the endpoints'."""
    found = list(instance.psc_auto_connections)
    for endpoint in instance.endpoints:
        found += [c.psc_auto_connection for c in endpoint.connections if "psc_auto_connection" in c]
    return found


class ValkeyFlavor:
    collection, kind, ca_method = "instances", "Instance", "GetCertificateAuthority"
    types: ModuleType = memorystore_v1
    service_class = VALKEY_SERVICE_CLASS
    message, metadata = Instance, memorystore_v1.OperationMetadata

    def check(self, instance: Instance, instance_id: str | None) -> None:
        if instance_id is not None:
            rule = "4 to 63 lowercase letters, digits and hyphens, not ending with a hyphen"
            rules.check_id(instance_id, INSTANCE_ID, rule, "instance_id")
        mode = instance.mode
        if mode == Enums.Mode.STANDALONE:
            raise rules.invalid("mode STANDALONE is not supported: use CLUSTER or CLUSTER_DISABLED")
        if mode == Enums.Mode.CLUSTER_DISABLED:
            if instance.shard_count not in (0, 1):
                raise rules.invalid("shard_count must be 1 when mode is CLUSTER_DISABLED")
            rules.check_counts(1, instance.replica_count, 5)
        else:
            rules.check_counts(instance.shard_count, instance.replica_count, 5)
        if instance.authorization_mode == Enums.AuthorizationMode.TOKEN_AUTH:
            raise rules.invalid("authorization_mode TOKEN_AUTH is not emulated: use IAM_AUTH")
        if instance.engine_version and instance.engine_version not in VERSIONS:
            raise rules.invalid(
                f"engine_version {instance.engine_version!r} is not one of {VERSIONS}"
            )
        for index, connection in enumerate(_auto_connections(instance)):
            for field in ("network", "project_id"):
                if not getattr(connection, field):
                    raise rules.invalid(f"psc_auto_connections[{index}].{field} is required")
        rules.check_configs(instance.engine_configs, "engine_configs")
        rules.check_labels(instance.labels)

    def defaults(self, instance: Instance, project: str, region: str) -> None:
        if instance.mode == Enums.Mode.MODE_UNSPECIFIED:
            instance.mode = Enums.Mode.CLUSTER
        if instance.mode == Enums.Mode.CLUSTER_DISABLED:
            instance.shard_count = 1
        instance.replica_count = instance.replica_count  # present: 0 when not given
        if instance.node_type == Enums.NodeType.NODE_TYPE_UNSPECIFIED:
            instance.node_type = Enums.NodeType.HIGHMEM_MEDIUM
        instance.engine_version = instance.engine_version or "VALKEY_8_0"
        auth, transit = Enums.AuthorizationMode, Enums.TransitEncryptionMode
        if instance.authorization_mode == auth.AUTHORIZATION_MODE_UNSPECIFIED:
            instance.authorization_mode = auth.AUTH_DISABLED
        if instance.transit_encryption_mode == transit.TRANSIT_ENCRYPTION_MODE_UNSPECIFIED:
            instance.transit_encryption_mode = transit.TRANSIT_ENCRYPTION_DISABLED
        for connection in _auto_connections(instance):
            connection.network = network_path(connection.network, project)
        instance.deletion_protection_enabled = instance.deletion_protection_enabled
        for output_only in ("discovery_endpoints", "psc_attachment_details", "state_info"):
            instance._pb.ClearField(output_only)

    def update_fields(self, paths: list[str], current: Instance, candidate: Instance) -> list[str]:
        return rules.update_fields(paths, UPDATABLE)

    def networks(self, instance: Instance) -> list[str]:
        return sorted({c.network for c in _auto_connections(instance)})

    def spec(self, instance: Instance) -> NodeSpec:
        cluster = instance.mode != Enums.Mode.CLUSTER_DISABLED
        return NodeSpec(
            shards=instance.shard_count,
            replicas=instance.replica_count,
            cluster_mode=cluster,
            configs=dict(instance.engine_configs),
        )

    def tls(self, instance: Instance) -> bool:
        return bool(
            instance.transit_encryption_mode == Enums.TransitEncryptionMode.SERVER_AUTHENTICATION
        )

    def show(self, instance: Instance, address: str, port: int) -> None:
        """The endpoints: where the emulator's nodes listen, on each requested network."""
        networks = self.networks(instance)
        instance.discovery_endpoints = [
            memorystore_v1.DiscoveryEndpoint(address=address, port=port, network=network)
            for network in networks or [""]
        ]
        kind = (
            Connection.CONNECTION_TYPE_PRIMARY
            if instance.mode == Enums.Mode.CLUSTER_DISABLED
            else Connection.CONNECTION_TYPE_DISCOVERY
        )
        region = instance.name.split("/")[3]
        for index, connection in enumerate(_auto_connections(instance)):
            connection.ip_address, connection.port = address, port
            connection.connection_type = kind
            connection.psc_connection_id = f"{instance.uid[:8]}-{index}"
            connection.forwarding_rule = (
                f"projects/{connection.project_id}/regions/{region}/forwardingRules/"
                f"sca-auto-fr-{instance.uid[:8]}-{index}"
            )
            connection.psc_connection_status = memorystore_v1.PscConnectionStatus.ACTIVE
        gb = NODE_GB.get(Enums.NodeType(instance.node_type).name, 13.0)
        instance.node_config = memorystore_v1.NodeConfig(size_gb=gb)
