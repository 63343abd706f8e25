"""Memorystore for Redis Cluster (``google.cloud.redis.cluster.v1.CloudRedisCluster``): its
clusters' rules, defaults and endpoints, as a
:class:`~memoserve_dev.memorystore_emulator.managed.Flavor`.

Every cluster is a real Redis Cluster of shard_count primaries with replica_count replicas each.
AUTH: AUTH_MODE_IAM_AUTH nodes take any token (the emulator cannot check Google's),
AUTH_MODE_DISABLED nodes want none; AUTH_MODE_TOKEN_AUTH is not emulated.
"""

from __future__ import annotations

import math
import re
from types import ModuleType
from typing import Any

from google.cloud import redis_cluster_v1

from memoserve_dev.memorystore_emulator import sharded_validate as rules
from memoserve_dev.memorystore_emulator.nodes import NodeSpec
from memoserve_dev.memorystore_emulator.psc import REDIS_CLUSTER_SERVICE_CLASS, network_path

Cluster = redis_cluster_v1.Cluster
Auth: Any = redis_cluster_v1.AuthorizationMode
Transit: Any = redis_cluster_v1.TransitEncryptionMode
NodeType: Any = redis_cluster_v1.NodeType
CLUSTER_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
NODE_GB = {
    "REDIS_SHARED_CORE_NANO": 1.4,
    "REDIS_STANDARD_SMALL": 6.5,
    "REDIS_HIGHMEM_MEDIUM": 13.0,
    "REDIS_HIGHMEM_XLARGE": 58.0,
}
UPDATABLE = {
    "shard_count": "shard_count",
    "replica_count": "replica_count",
    "redis_configs": "redis_configs",
    "node_type": "node_type",
    "deletion_protection_enabled": "deletion_protection_enabled",
}


class ClusterFlavor:
    collection, kind, ca_method = "clusters", "Cluster", "GetClusterCertificateAuthority"
    types: ModuleType = redis_cluster_v1
    service_class = REDIS_CLUSTER_SERVICE_CLASS
    message, metadata = Cluster, redis_cluster_v1.OperationMetadata

    def check(self, cluster: Cluster, cluster_id: str | None) -> None:
        if cluster_id is not None:
            rule = (
                "1 to 63 lowercase letters, digits and hyphens, starting with a letter and "
                "ending with a letter or a digit"
            )
            rules.check_id(cluster_id, CLUSTER_ID, rule, "cluster_id")
            if not cluster.psc_configs:
                raise rules.invalid("psc_configs is required: the network of the endpoint")
        rules.check_counts(cluster.shard_count, cluster.replica_count, 2)
        if cluster.authorization_mode == Auth.AUTH_MODE_TOKEN_AUTH:
            raise rules.invalid("authorization_mode AUTH_MODE_TOKEN_AUTH is not emulated")
        for index, config in enumerate(cluster.psc_configs):
            if not config.network:
                raise rules.invalid(f"psc_configs[{index}].network is required")
        rules.check_configs(cluster.redis_configs, "redis_configs")

    def defaults(self, cluster: Cluster, project: str, region: str) -> None:
        cluster.replica_count = cluster.replica_count  # present: 0 when not given
        if cluster.node_type == NodeType.NODE_TYPE_UNSPECIFIED:
            cluster.node_type = NodeType.REDIS_HIGHMEM_MEDIUM
        if cluster.authorization_mode == Auth.AUTH_MODE_UNSPECIFIED:
            cluster.authorization_mode = Auth.AUTH_MODE_DISABLED
        if cluster.transit_encryption_mode == Transit.TRANSIT_ENCRYPTION_MODE_UNSPECIFIED:
            cluster.transit_encryption_mode = Transit.TRANSIT_ENCRYPTION_MODE_DISABLED
        for config in cluster.psc_configs:
            config.network = network_path(config.network, project)
        cluster.deletion_protection_enabled = cluster.deletion_protection_enabled
        for output_only in ("discovery_endpoints", "psc_connections", "state_info", "size_gb"):
            cluster._pb.ClearField(output_only)

    def update_fields(self, paths: list[str], current: Cluster, candidate: Cluster) -> list[str]:
        return rules.update_fields(paths, UPDATABLE)

    def networks(self, cluster: Cluster) -> list[str]:
        return sorted({config.network for config in cluster.psc_configs})

    def spec(self, cluster: Cluster) -> NodeSpec:
        return NodeSpec(
            shards=cluster.shard_count,
            replicas=cluster.replica_count,
            configs=dict(cluster.redis_configs),
        )

    def tls(self, cluster: Cluster) -> bool:
        mode = Transit.TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION
        return bool(cluster.transit_encryption_mode == mode)

    def show(self, cluster: Cluster, address: str, port: int) -> None:
        """The endpoints: where the emulator's nodes listen, on each requested network."""
        project, region = cluster.name.split("/")[1], cluster.name.split("/")[3]
        cluster.discovery_endpoints = [
            redis_cluster_v1.DiscoveryEndpoint(
                address=address, port=port, psc_config=redis_cluster_v1.PscConfig(network=network)
            )
            for network in self.networks(cluster)
        ]
        cluster.psc_connections = [
            redis_cluster_v1.PscConnection(
                psc_connection_id=f"{cluster.uid[:8]}-{index}",
                address=address,
                forwarding_rule=(
                    f"projects/{project}/regions/{region}/forwardingRules/"
                    f"sca-auto-fr-{cluster.uid[:8]}-{index}"
                ),
                project_id=project,
                network=network,
                psc_connection_status=redis_cluster_v1.PscConnectionStatus.PSC_CONNECTION_STATUS_ACTIVE,
                connection_type=redis_cluster_v1.ConnectionType.CONNECTION_TYPE_DISCOVERY,
            )
            for index, network in enumerate(self.networks(cluster))
        ]
        precise = cluster.shard_count * NODE_GB.get(NodeType(cluster.node_type).name, 13.0)
        cluster.precise_size_gb, cluster.size_gb = precise, math.ceil(precise)
