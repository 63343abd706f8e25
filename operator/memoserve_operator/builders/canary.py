"""The canary (spec.canary): NAME-canary's Deployment, Service, PDB, HPA and NetworkPolicy.

Built by the stable pods' own builders from ``canary_service(isvc)`` (the resource with
canary.model and the canary's replica bounds), under the name NAME-canary and the component
``canary``: no selector of the stable's (Service, PDB, NetworkPolicy) ever matches a canary pod,
so the stable Service answers with the stable model only and the route weights the two
Services (builders/traffic.py). The pod template is the one the stable Deployment gets when the
canary is promoted, but for the component label and the stats namespace.
"""

from __future__ import annotations

from memoserve_contract.canary import canary_name, canary_service, canary_stats_namespace
from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import env_var
from memoserve_operator.builders.deployment import config_checksum, deployment
from memoserve_operator.builders.grpc_tls import TlsMaterial
from memoserve_operator.builders.hpa import hpa, metrics
from memoserve_operator.builders.meta import CANARY, Object, canary_selector_labels
from memoserve_operator.builders.network_policy import build_network_policy
from memoserve_operator.builders.pdb import build_pdb
from memoserve_operator.builders.pod import pod_template
from memoserve_operator.builders.service import build_service
from memoserve_operator.settings import OperatorSettings


def build_canary(
    isvc: InferenceService,
    settings: OperatorSettings,
    redis: RedisEndpoint | None = None,
    grpc_tls: TlsMaterial | None = None,
) -> list[Object]:
    """NAME-canary's Deployment, Service and PDB, and its HPA when canary.maxReplicas says so
    ([] without a canary). Its NetworkPolicy comes with the stable one (build_all)."""
    view = canary_service(isvc)
    if view is None:
        return []
    name, match = canary_name(isvc), canary_selector_labels(isvc)
    pods = pod_template(
        view, settings, config_checksum(view, redis, grpc_tls), component=CANARY, match=match
    )
    # The canary counts its cache hits apart (status.canary.hitRatio); its keys share the
    # service's cache namespace, so the promoted pods find the canary's answers.
    stats = {"name": env_var("cache_stats_namespace"), "value": canary_stats_namespace(isvc)}
    pods["spec"]["containers"][0]["env"].append(stats)
    replicas = None if view.spec.autoscaled else view.spec.fixed_replicas
    objects = [
        deployment(
            view,
            settings,
            template=pods,
            replicas=replicas,
            name=name,
            component=CANARY,
            match=match,
        ),
        build_service(view, name=name, component=CANARY, match=match),
        build_pdb(view, name=name, component=CANARY, match=match),
    ]
    if view.spec.autoscaled:
        assert view.spec.max_replicas is not None
        objects.append(
            hpa(
                view,
                name=name,
                min_replicas=view.spec.min_replicas,
                max_replicas=view.spec.max_replicas,
                metrics=metrics(view, settings),
            )
        )
    return objects


def build_canary_network_policy(
    isvc: InferenceService, settings: OperatorSettings, redis: RedisEndpoint | None
) -> Object | None:
    """The stable pods' NetworkPolicy for the canary's pods (None without a canary)."""
    if isvc.spec.canary is None:
        return None
    return build_network_policy(
        isvc,
        settings,
        redis,
        name=canary_name(isvc),
        component=CANARY,
        match=canary_selector_labels(isvc),
    )
