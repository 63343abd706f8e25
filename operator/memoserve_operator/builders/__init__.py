"""What should exist for an InferenceService: pure functions from (resource, settings) to objects.

Builders read nothing but their arguments and never change them; each returns plain,
JSON-ready dicts ready for server-side apply. ``build_all`` is the whole desired state.
"""

from __future__ import annotations

from memoserve_contract.canary import canary_name
from memoserve_contract.pod_settings import model_tier_name
from memoserve_contract.redis_endpoint import RedisEndpoint, external_endpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.builders.backend_config import build_backend_config
from memoserve_operator.builders.canary import build_canary, build_canary_network_policy
from memoserve_operator.builders.deployment import build_deployment
from memoserve_operator.builders.front import build_front_deployment, build_front_hpa
from memoserve_operator.builders.gateway import build_gateway
from memoserve_operator.builders.gke_policies import (
    build_backend_policies,
    build_health_check_policies,
)
from memoserve_operator.builders.grpc_tls import (
    TlsMaterial,
    build_grpc_tls_secret,
    grpc_tls_secret_name,
)
from memoserve_operator.builders.hpa import build_hpa
from memoserve_operator.builders.http_route import build_http_route
from memoserve_operator.builders.ingress import build_ingress
from memoserve_operator.builders.managed_certificate import build_managed_certificate
from memoserve_operator.builders.meta import Object, redis_secret_name
from memoserve_operator.builders.model_tier import (
    build_model_deployment,
    build_model_hpa,
    build_model_pdb,
)
from memoserve_operator.builders.network_policy import (
    build_model_network_policy,
    build_network_policy,
)
from memoserve_operator.builders.pdb import build_pdb
from memoserve_operator.builders.pod_monitoring import build_pod_monitoring
from memoserve_operator.builders.redis import build_redis_secret, redis_refs
from memoserve_operator.builders.service import build_model_service, build_service
from memoserve_operator.builders.service_account import build_service_account
from memoserve_operator.settings import OperatorSettings

# Every (apiVersion, kind) build_all can return, in apply order. A reconcile that no longer
# builds one of them (ingress turned off, autoscaling off, ...) deletes the stale child, found
# by the app.kubernetes.io/instance label and our owner reference.
OWNED_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("cloud.google.com/v1", "BackendConfig"),
    ("networking.gke.io/v1", "ManagedCertificate"),
    ("networking.k8s.io/v1", "Ingress"),
    # spec.gateway: the policies first, so that the load balancer starts with their health
    # check; the Gateway (when the service has its own) before the route that attaches to it.
    ("networking.gke.io/v1", "HealthCheckPolicy"),
    ("networking.gke.io/v1", "GCPBackendPolicy"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("monitoring.googleapis.com/v1", "PodMonitoring"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)
# The kinds of which a service has one per Service that takes the route's traffic (named after
# it): traffic.backends.
PER_BACKEND_KINDS = frozenset({"HealthCheckPolicy", "GCPBackendPolicy"})
# The kinds of which a split service (spec.front.enabled) has two: NAME (the front, or the one
# tier) and NAME-model (the model tier); a service with a canary, NAME and NAME-canary.
TIERED_KINDS = frozenset(
    {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}
)


def build_all(
    isvc: InferenceService,
    settings: OperatorSettings,
    *,
    redis: RedisEndpoint | None = None,
    grpc_tls: TlsMaterial | None = None,
) -> list[Object]:
    """Every object the operator applies for ``isvc``, in OWNED_KINDS order.

    ``redis`` is the endpoint a Memorystore, Valkey or Redis Cluster reconcile learned; an
    ``external`` cache's comes from the spec. Without one, such a service gets no
    ``<name>-redis`` Secret yet: the caller waits for the instance before applying the
    Deployment that reads it (and must not prune the existing Secret as stale meanwhile).

    ``grpc_tls`` is the key and certificate (made and kept by the operator) of a service whose
    gRPC goes through the load balancer; without one (``memoserve render``) no
    ``<name>-grpc-tls`` Secret is built and the pods wait for the operator's.
    """
    if redis_refs(isvc) is None:
        redis = None
    elif redis is None:
        redis = external_endpoint(isvc)
    objects = [build_service_account(isvc)]
    if redis is not None:
        objects.append(build_redis_secret(isvc, redis))
    if grpc_tls is not None and isvc.spec.grpc_through_ingress:
        objects.append(build_grpc_tls_secret(isvc, grpc_tls))
    else:
        grpc_tls = None
    if isvc.spec.split:
        objects += _split(isvc, settings, redis, grpc_tls)
    else:
        objects += [
            build_deployment(isvc, settings, redis, grpc_tls),
            build_service(isvc),
            build_pdb(isvc),
        ]
        if isvc.spec.autoscaled:
            objects.append(build_hpa(isvc, settings))
        objects += build_canary(isvc, settings, redis, grpc_tls)
    if isvc.spec.ingress_enabled:
        objects.append(build_backend_config(isvc, settings))
        if isvc.spec.wants_managed_certificate:
            objects.append(build_managed_certificate(isvc))
        objects.append(build_ingress(isvc))
    if isvc.spec.gateway is not None:
        objects += build_health_check_policies(isvc)
        objects += build_backend_policies(isvc, settings)
        if isvc.spec.gateway.owns_gateway:
            objects.append(build_gateway(isvc))
        objects.append(build_http_route(isvc))
    if settings.pod_monitoring:
        objects.append(build_pod_monitoring(isvc))
    if isvc.spec.network_policy_enabled:
        objects.append(build_network_policy(isvc, settings, redis))
        if isvc.spec.split:
            objects.append(build_model_network_policy(isvc, settings))
        if (canary_policy := build_canary_network_policy(isvc, settings, redis)) is not None:
            objects.append(canary_policy)
    return objects


def _split(
    isvc: InferenceService,
    settings: OperatorSettings,
    redis: RedisEndpoint | None,
    grpc_tls: TlsMaterial | None,
) -> list[Object]:
    """The front (NAME) and the model tier (NAME-model), model first of each kind: the front's
    upstream is there before the front asks it."""
    front = isvc.spec.front
    assert front is not None
    objects = [
        build_model_deployment(isvc, settings),
        build_front_deployment(isvc, settings, redis, grpc_tls),
        build_model_service(isvc),
        build_service(isvc),
        build_model_pdb(isvc),
        build_pdb(isvc),
    ]
    if isvc.spec.autoscaled:
        objects.append(build_model_hpa(isvc, settings))
    if front.autoscaled:
        objects.append(build_front_hpa(isvc, settings))
    return objects


def child_names(isvc: InferenceService, kind: str) -> tuple[str, ...]:
    """Every name a child of ``kind`` of ``isvc`` may have (what pruning looks up by name)."""
    if kind == "Secret":
        return (redis_secret_name(isvc), grpc_tls_secret_name(isvc))
    if kind in TIERED_KINDS:
        return (isvc.name, model_tier_name(isvc), canary_name(isvc))
    if kind in PER_BACKEND_KINDS:
        # Every Service that may take traffic, not only today's: a canary's policies are
        # pruned by name once spec.canary is gone.
        return (isvc.name, canary_name(isvc))
    return (isvc.name,)
