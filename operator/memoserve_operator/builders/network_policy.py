"""The serving pods' NetworkPolicy: only the traffic a serving pod needs.

Ingress, to the serving ports only (HTTP, and gRPC when on): from pods of the service's
namespace, from Google's load balancer health-check and proxy ranges (with an Ingress or a
Gateway; ``OperatorSettings.lb_source_ranges``), from Managed Prometheus's collectors (with
PodMonitoring), and from ``spec.networkPolicy.ingressCidrs`` (e.g. an internal or regional
load balancer's proxy-only subnet).
Egress: DNS, the GKE metadata server (Workload Identity tokens), HTTPS (Cloud Storage and other
Google APIs: their addresses are not fixed), and the Redis (its address when it is one, else its
port; for Valkey / Redis Cluster also the nodes' port range on the cluster's PSC addresses).
"""

from __future__ import annotations

import ipaddress

from memoserve_contract.pod_settings import model_tier_name
from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.env import trace_export_of
from memoserve_operator.builders.meta import (
    MODEL,
    SERVING,
    Object,
    model_ports,
    model_selector_labels,
    object_meta,
    selector_labels,
    serving_ports,
)
from memoserve_operator.settings import OperatorSettings

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
MANAGED_PROMETHEUS_NAMESPACE = "gmp-system"
# The metadata server: 169.254.169.254:80, and :988 on GKE Dataplane V2 nodes.
METADATA_SERVER = (("169.254.169.254/32", 80), ("169.254.169.252/32", 988))


def _tcp(port: int | str) -> Object:
    return {"protocol": "TCP", "port": port}


def _ip_block(cidr: str) -> Object:
    return {"ipBlock": {"cidr": cidr}}


def _namespace(name: str) -> Object:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: name}}}


def _ingress(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    sources: list[Object] = [{"podSelector": {}}]  # the service's own namespace
    if isvc.spec.ingress_enabled or isvc.spec.gateway_enabled:
        sources += [_ip_block(cidr) for cidr in settings.lb_source_ranges]
    if settings.pod_monitoring:
        sources.append(_namespace(MANAGED_PROMETHEUS_NAMESPACE))
    policy = isvc.spec.network_policy
    if policy is not None:
        sources += [_ip_block(cidr) for cidr in policy.ingress_cidrs]
    return [{"from": sources, "ports": [_tcp(name) for name, _ in serving_ports(isvc)]}]


# Valkey and Redis Cluster nodes answer on the cluster's Private Service Connect addresses at
# ports other than the discovery endpoint's: Google's docs ("Connect to a Memorystore for Redis
# Cluster instance", "Allowlist ports on firewall"; likewise for Valkey) ask to allow TCP 6379 and
# TCP 11000-13047 to every PSC endpoint of the cluster. A cluster client follows CLUSTER SHARDS /
# MOVED replies to those addresses, so egress to the discovery endpoint alone would not do.
PSC_NODE_PORTS = (11000, 13047)


def _redis_rule(redis: RedisEndpoint) -> Object:
    ports = [_tcp(redis.port)]
    if redis.engine != "redis":
        low, high = PSC_NODE_PORTS
        ports.append({"protocol": "TCP", "port": low, "endPort": high})
    rule: Object = {"ports": ports}
    hosts = (redis.host, *redis.node_addresses)
    if redis.engine != "redis" and not redis.node_addresses:
        return rule  # the PSC addresses besides the discovery one are not known: any address
    try:
        addresses = list(dict.fromkeys(ipaddress.ip_address(host) for host in hosts))
    except ValueError:
        return rule  # a host name: its addresses are not known here
    rule["to"] = [_ip_block(f"{a}/{a.max_prefixlen}") for a in addresses]
    return rule


def _egress(
    isvc: InferenceService, settings: OperatorSettings, redis: RedisEndpoint | None
) -> list[Object]:
    rules = _base_egress(isvc, settings)
    if redis is not None:
        rules.append(_redis_rule(redis))
    if isvc.spec.split:  # the front calls the model tier
        rules.append(
            {
                "to": [{"podSelector": {"matchLabels": model_selector_labels(isvc)}}],
                "ports": [_tcp(port) for _, port in model_ports(isvc)],
            }
        )
    return rules


def _base_egress(isvc: InferenceService, settings: OperatorSettings) -> list[Object]:
    """DNS, the metadata server (Workload Identity), HTTPS (Google APIs) and, when the pods
    trace, the OTLP endpoint's port (a collector's address is not known here: any)."""
    rules = [
        {"ports": [{"protocol": "UDP", "port": 53}, _tcp(53)]},
        *({"to": [_ip_block(cidr)], "ports": [_tcp(port)]} for cidr, port in METADATA_SERVER),
        {"ports": [_tcp(443)]},
    ]
    export = trace_export_of(isvc, settings)
    if export is not None and export.port != 443:
        rules.append({"ports": [_tcp(export.port)]})
    return rules


def build_network_policy(
    isvc: InferenceService,
    settings: OperatorSettings,
    redis: RedisEndpoint | None,
    *,
    name: str | None = None,
    component: str = SERVING,
    match: dict[str, str] | None = None,
) -> Object:
    """The serving pods' (a canary's: ``name``, ``component``, ``match`` its own)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(isvc, component, name=name),
        "spec": {
            "podSelector": {"matchLabels": match if match is not None else selector_labels(isvc)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": _ingress(isvc, settings),
            "egress": _egress(isvc, settings, redis),
        },
    }


def build_model_network_policy(isvc: InferenceService, settings: OperatorSettings) -> Object:
    """The model tier's: in only from the front's pods (and Managed Prometheus, which reads
    the in-flight metric its HPA scales on), out to DNS, the metadata server and HTTPS (the
    model's bucket); never to Redis."""
    sources: list[Object] = [{"podSelector": {"matchLabels": selector_labels(isvc)}}]
    if settings.pod_monitoring:
        sources.append(_namespace(MANAGED_PROMETHEUS_NAMESPACE))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(isvc, MODEL, name=model_tier_name(isvc)),
        "spec": {
            "podSelector": {"matchLabels": model_selector_labels(isvc)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": sources, "ports": [_tcp(name) for name, _ in model_ports(isvc)]}],
            "egress": _base_egress(isvc, settings),
        },
    }
