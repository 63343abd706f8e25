"""The status a reconcile reports (pure): verdicts of the parts -> InferenceServiceStatus.

Parts: ServingReady (the Deployment and its pods), CacheReady (the cache step), IngressReady
(when the ingress is on; with spec.gateway, the HTTPRoute's status: status/route.py),
AutoscalingReady (when the HPA is on); Ready sums them up. A child the API server refused to
take makes its part False with reason ApplyFailed (a failure for health.lua) and the server's
words.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from memoserve_contract.cache_stats import CacheStats
from memoserve_contract.pod_settings import model_tier_name
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import (
    CacheStatus,
    CanaryStatus,
    ConditionType,
    InferenceServiceStatus,
    with_summary,
)
from memoserve_operator.builders.meta import model_selector, selector
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.kube.client import KubeError
from memoserve_operator.preflight import FOUND, Preflight
from memoserve_operator.status.canary import canary_status, canary_verdict
from memoserve_operator.status.conditions import merge_conditions, timestamp
from memoserve_operator.status.observe import (
    AUTOSCALING_READY,
    SERVING_READY,
    autoscaling_verdict,
    both,
    in_tier,
    ingress_verdict,
    model_verdict,
    replica_counts,
    serving_verdict,
    url,
)
from memoserve_operator.status.route import route_url, route_verdict
from memoserve_operator.verdict import Verdict

Object = dict[str, Any]
PART_OF_KIND = {
    "Secret": ConditionType.CACHE_READY,
    "HorizontalPodAutoscaler": ConditionType.AUTOSCALING_READY,
    "BackendConfig": ConditionType.INGRESS_READY,
    "ManagedCertificate": ConditionType.INGRESS_READY,
    "Ingress": ConditionType.INGRESS_READY,
    "HealthCheckPolicy": ConditionType.INGRESS_READY,
    "GCPBackendPolicy": ConditionType.INGRESS_READY,
    "Gateway": ConditionType.INGRESS_READY,
    "HTTPRoute": ConditionType.INGRESS_READY,
}  # every other kind: ServingReady


def needs_pods(deployment: Object | None) -> bool:
    """Whether the pods have to be read: the Deployment exists and is not all ready."""
    if deployment is None:
        return False
    _, ready, desired = replica_counts(deployment)
    updated = int((deployment.get("status") or {}).get("updatedReplicas") or 0)
    return min(ready, updated) < desired


def build_status(
    isvc: InferenceService,
    cache: CacheOutcome,
    live: Mapping[tuple[str, str], Object | None],
    pods: Sequence[Object],
    failures: Mapping[str, KubeError],
    old: InferenceServiceStatus,
    now: datetime.datetime,
    *,
    stats: CacheStats | None = None,
    model: Preflight = FOUND,
    model_pods: Sequence[Object] = (),
    canary_pods: Sequence[Object] = (),
    canary_stats: CacheStats | None = None,
) -> InferenceServiceStatus:
    """``live``: the children by (kind, name); ``pods``: the serving (or front) pods read while
    not all ready, ``model_pods`` the model tier's of a split service, ``canary_pods`` the
    canary's (``canary_stats`` its cache counts)."""
    deployment = live.get(("Deployment", isvc.name))
    tier = live.get(("Deployment", model_tier_name(isvc))) if isvc.spec.split else None
    if isvc.spec.split:
        # Both tiers, each named: a front that is ready serves nothing without its model.
        serving = both(
            SERVING_READY,
            ("front", serving_verdict(deployment, pods)),
            ("model tier", serving_verdict(tier, model_pods)),
        )
        loaded = model.verdict or in_tier("model tier", model_verdict(tier, model_pods))
    else:
        serving = serving_verdict(deployment, pods)
        # A preflight failure outranks the pods: those that are ready serve the previous spec.
        loaded = model.verdict or model_verdict(deployment, pods)
    if cache.hold and deployment is None:
        serving = Verdict.false(serving.type, "WaitingForCache", "needs the cache endpoint")
    if model.verdict is not None and deployment is None:
        serving = Verdict.false(serving.type, model.verdict.reason, "waits for the model")
    parts = [serving, loaded, cache.verdict]
    if isvc.spec.ingress_enabled:
        certificate = live.get(("ManagedCertificate", isvc.name))
        wants = isvc.spec.wants_managed_certificate
        parts.append(ingress_verdict(live.get(("Ingress", isvc.name)), certificate, wants))
    route, gateway = live.get(("HTTPRoute", isvc.name)), live.get(("Gateway", isvc.name))
    if isvc.spec.gateway_enabled:
        parts.append(route_verdict(isvc, route, gateway))
    if autoscalers := _autoscalers(isvc, live, serving_ready=serving.ok, now=now):
        parts.append(both(AUTOSCALING_READY, *autoscalers))
    if (canary := canary_verdict(isvc, live, canary_pods)) is not None:
        parts.append(canary)
    for kind, exc in failures.items():
        part = PART_OF_KIND.get(kind, ConditionType.SERVING_READY)
        refused = Verdict.false(part, "ApplyFailed", str(exc))
        parts = [refused if p.type == part and p.reason != "ApplyFailed" else p for p in parts]
    # The scale subresource (spec.replicas) scales the model tier of a split service.
    pods_total, ready, desired = replica_counts(tier if isvc.spec.split else deployment)
    summary = f"{ready}/{desired}"
    if isvc.spec.split:
        _, front_ready, front_desired = replica_counts(deployment)
        summary = f"{front_ready}/{front_desired} front, {ready}/{desired} model"
    address = (
        route_url(isvc, route, gateway)
        if isvc.spec.gateway_enabled
        else url(isvc, live.get(("Ingress", isvc.name)))
    )
    return InferenceServiceStatus(
        observed_generation=isvc.metadata.generation,
        conditions=merge_conditions(
            old.conditions,
            parts,
            ready_message=f"{summary} replicas ready at {address}",
            generation=isvc.metadata.generation,
            now=timestamp(now),
        ),
        url=address,
        replicas=pods_total,
        ready_replicas=ready,
        replica_summary=summary,
        selector=model_selector(isvc) if isvc.spec.split else selector(isvc),
        cache=_described(isvc, _with_hit_ratio(cache.status, stats)),
        model_digest=stats.digest if stats is not None else None,
        canary=canary_status(isvc, live, canary_stats),
    )


def _autoscalers(
    isvc: InferenceService,
    live: Mapping[tuple[str, str], Object | None],
    *,
    serving_ready: bool,
    now: datetime.datetime,
) -> list[tuple[str, Verdict]]:
    """(tier, AutoscalingReady) of each HPA the service has."""
    found = []
    front = isvc.spec.front
    if isvc.spec.split and front is not None and front.autoscaled:
        hpa = live.get(("HorizontalPodAutoscaler", isvc.name))
        found.append(("front", autoscaling_verdict(hpa, serving_ready=serving_ready, now=now)))
    if isvc.spec.autoscaled:
        name = model_tier_name(isvc) if isvc.spec.split else isvc.name
        hpa = live.get(("HorizontalPodAutoscaler", name))
        verdict = autoscaling_verdict(hpa, serving_ready=serving_ready, now=now)
        found.append(("model tier" if isvc.spec.split else "", verdict))
    return found


def _with_hit_ratio(status: CacheStatus | None, stats: CacheStats | None) -> CacheStatus | None:
    percent = stats.hit_percent if stats is not None else None
    if status is None or percent is None:
        return status
    return status.model_copy(update={"hit_ratio": f"{percent}%"})


def _described(isvc: InferenceService, status: CacheStatus | None) -> CacheStatus | None:
    """``status`` with its engine (from the spec, unless the cache step said) and the CACHE
    column's summary: written here, once, whichever step resolved the cache."""
    if status is None:
        return None
    cache = isvc.spec.cache
    if status.engine is None and cache is not None and cache.engine is not None:
        status = status.model_copy(update={"engine": cache.engine})
    return with_summary(status)


def status_patch(status: InferenceServiceStatus) -> Object:
    """A merge patch that makes the status exactly ``status`` (null removes stale fields)."""
    data = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    if status.cache is not None:
        data["cache"] = dict.fromkeys(_aliases(CacheStatus)) | data["cache"]
    if status.canary is not None:
        data["canary"] = dict.fromkeys(_aliases(CanaryStatus)) | data["canary"]
    return dict.fromkeys(_aliases(InferenceServiceStatus)) | data


def _aliases(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]
