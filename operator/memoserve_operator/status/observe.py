"""What the children say (pure): live Deployment, pods, HPA, Ingress, certificate -> verdicts.

Ready tells the truth: serving is ready only when every desired replica of the current pod
template is ready. A crash loop, an image that cannot be pulled, a pod that cannot be created or
a rollout past its deadline is a failure (a reason health.lua reads as Degraded) with the pod's
own words in the message; waiting for pods, an address or a certificate is not.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import ConditionType
from memoserve_operator.verdict import Verdict

Object = Mapping[str, Any]

SERVING = SERVING_READY = ConditionType.SERVING_READY
MODEL = ConditionType.MODEL_READY
INGRESS = ConditionType.INGRESS_READY
AUTOSCALING = AUTOSCALING_READY = ConditionType.AUTOSCALING_READY

# Container waiting reasons that waiting alone will not fix (kubelet's names).
POD_FAILURES = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
# How long the HPA may go without metrics after the pods are ready (metrics-server scrapes
# every 15-60 s; a custom-metrics adapter that never answers is a failure).
METRICS_GRACE = datetime.timedelta(minutes=5)
# How memoserve serve's termination message starts when the model cannot be loaded.
LOAD_FAILURE = "cannot load model"
MESSAGE_LIMIT = 1024


def _conditions(obj: Object | None) -> dict[str, Object]:
    items = ((obj or {}).get("status") or {}).get("conditions") or []
    return {c.get("type", ""): c for c in items if isinstance(c, Mapping)}


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def replica_counts(deployment: Object | None) -> tuple[int, int, int]:
    """(pods, ready pods, desired replicas) of the Deployment; zeros when it does not exist."""
    if deployment is None:
        return 0, 0, 0
    status = deployment.get("status") or {}
    desired = (deployment.get("spec") or {}).get("replicas", 1)
    return int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0), int(desired)


def in_tier(tier: str, verdict: Verdict) -> Verdict:
    """``verdict`` with its message naming the tier of a split service ("" : one tier)."""
    if not tier:
        return verdict
    message = f"{tier}: {verdict.message}" if verdict.message else tier
    return Verdict(verdict.type, verdict.status, verdict.reason, _short(message))


def both(type_: str, *verdicts: tuple[str, Verdict]) -> Verdict:
    """One part from several tiers' verdicts: the first that is not True, naming its tier;
    else True, with each tier's message."""
    for tier, verdict in verdicts:
        if not verdict.ok:
            return in_tier(tier, Verdict(type_, verdict.status, verdict.reason, verdict.message))
    if len(verdicts) == 1:
        return in_tier(*verdicts[0])
    message = "; ".join(in_tier(tier, verdict).message for tier, verdict in verdicts)
    return Verdict.true(type_, verdicts[-1][1].reason, _short(message))


def pod_failure(pods: Sequence[Object]) -> Verdict | None:
    """The first serving pod that fails in a way waiting will not fix, in its own words."""
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        status = pod.get("status") or {}
        statuses = (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        )
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "")
            if reason not in POD_FAILURES:
                continue
            message = f"pod {name} container {container.get('name')}: {reason}"
            if waiting.get("message"):
                message += f": {waiting['message']}"
            last = (container.get("lastState") or {}).get("terminated") or {}
            if last:
                message += f"; last exit code {last.get('exitCode')} ({last.get('reason', '')})"
                if last.get("message"):
                    message += f": {last['message']}"
            return Verdict.false(SERVING, reason, _short(message))
    return None


def model_verdict(deployment: Object | None, pods: Sequence[Object]) -> Verdict:
    """ModelReady: a pod that is ready has loaded the model (its port opens only then); a
    server that exited says why in its termination message (``memoserve serve`` writes one
    line, e.g. a gs:// object that does not exist or may not be read)."""
    _, ready, desired = replica_counts(deployment)
    if ready:
        return Verdict.true(MODEL, "ModelLoaded", f"loaded by {ready}/{desired} pods")
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            state = container.get("state") or {}
            ended = state.get("terminated") or (container.get("lastState") or {}).get("terminated")
            if not ended or ended.get("exitCode") == 0 or not ended.get("message"):
                continue
            message = " ".join(str(ended["message"]).split())
            reason = "ModelLoadFailed" if message.startswith(LOAD_FAILURE) else "ServerFailed"
            return Verdict.false(MODEL, reason, _short(f"pod {name}: {message}"))
    if deployment is None:
        return Verdict.false(MODEL, "DeploymentPending", "no pods yet")
    return Verdict.false(MODEL, "ModelLoading", "no pod has loaded the model yet")


def serving_verdict(deployment: Object | None, pods: Sequence[Object]) -> Verdict:
    """ServingReady from the Deployment's status and, while it is not ready, its pods."""
    if deployment is None:
        return Verdict.false(SERVING, "DeploymentPending", "the Deployment does not exist yet")
    conditions = _conditions(deployment)
    failure = conditions.get("ReplicaFailure") or {}
    if failure.get("status") == "True":
        return Verdict.false(
            SERVING,
            "PodCreationFailed",
            _short(f"{failure.get('reason')}: {failure.get('message')}"),
        )
    if (found := pod_failure(pods)) is not None:
        return found
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Verdict.false(SERVING, "RolloutFailed", _short(str(progressing.get("message"))))
    status = deployment.get("status") or {}
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return Verdict.false(
            SERVING, "RolloutInProgress", "the Deployment controller is catching up"
        )
    _, ready, desired = replica_counts(deployment)
    updated = int(status.get("updatedReplicas") or 0)
    if desired == 0:
        return Verdict.false(SERVING, "ScaledToZero", "0 replicas requested")
    if updated < desired:
        return Verdict.false(
            SERVING, "RolloutInProgress", f"{updated}/{desired} pods run the current template"
        )
    if ready < desired:
        return Verdict.false(SERVING, "PodsNotReady", _pending(pods, ready, desired))
    return Verdict.true(SERVING, "ReplicasReady", f"{ready}/{desired} replicas ready")


def _pending(pods: Sequence[Object], ready: int, desired: int) -> str:
    message = f"{ready}/{desired} replicas ready (loading the model or starting)"
    for pod in pods:
        scheduled = _conditions(pod).get("PodScheduled") or {}
        if scheduled.get("status") == "False" and scheduled.get("message"):
            name = (pod.get("metadata") or {}).get("name", "?")
            return _short(f"{message}; pod {name} unschedulable: {scheduled['message']}")
    return message


def address(ingress: Object | None) -> str | None:
    """The load balancer's IP (or host name) from the Ingress status."""
    entries = (((ingress or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress")
    for entry in entries or []:
        if found := entry.get("ip") or entry.get("hostname"):
            return str(found)
    return None


def url(isvc: InferenceService, ingress: Object | None) -> str | None:
    """Where clients send requests: the load balancer (host, else address), or in-cluster."""
    spec = isvc.spec.ingress
    if spec is None or not spec.enabled:
        return f"http://{isvc.name}.{isvc.namespace}.svc/"
    found = address(ingress)
    if found is None:
        return None
    tls = spec.managed_certificate or spec.managed_certificate_name is not None
    return f"{'https' if tls else 'http'}://{spec.host or found}{spec.path}"


def ingress_verdict(
    ingress: Object | None, certificate: Object | None, wants_certificate: bool
) -> Verdict:
    """IngressReady: the load balancer has an address and our certificate (if any) is Active."""
    if ingress is None:
        return Verdict.false(INGRESS, "IngressPending", "the Ingress does not exist yet")
    found = address(ingress)
    if found is None:
        return Verdict.false(
            INGRESS, "AddressPending", "the Google Cloud load balancer is being created"
        )
    if wants_certificate:
        state = str(((certificate or {}).get("status") or {}).get("certificateStatus") or "")
        if state.startswith("Failed"):
            domains = ((certificate or {}).get("status") or {}).get("domainStatus") or []
            detail = ", ".join(f"{d.get('domain')}: {d.get('status')}" for d in domains)
            return Verdict.false(INGRESS, "CertificateFailed", _short(f"{state} {detail}".strip()))
        if state != "Active":
            return Verdict.false(
                INGRESS,
                "CertificateProvisioning",
                f"load balancer at {found}; the managed certificate is {state or 'not ready'} "
                "(DNS must point at the address; provisioning takes up to an hour)",
            )
    return Verdict.true(INGRESS, "AddressAssigned", f"load balancer at {found}")


def autoscaling_verdict(
    hpa: Object | None, *, serving_ready: bool, now: datetime.datetime
) -> Verdict:
    """AutoscalingReady: the HPA can scale and reads its metrics."""
    if hpa is None:
        return Verdict.false(AUTOSCALING, "AutoscalerPending", "the HPA does not exist yet")
    conditions = _conditions(hpa)
    able, active = conditions.get("AbleToScale"), conditions.get("ScalingActive")
    if able is None or active is None:
        return Verdict.false(AUTOSCALING, "AutoscalerPending", "the HPA has not reported yet")
    if able.get("status") == "False" and str(able.get("reason", "")).startswith("Failed"):
        return Verdict.false(AUTOSCALING, "ScalingError", _hpa_message(able))
    if active.get("status") != "True":
        if not serving_ready or _since(active, now) < METRICS_GRACE:
            return Verdict.false(AUTOSCALING, "MetricsPending", _hpa_message(active))
        return Verdict.false(AUTOSCALING, "MetricsError", _hpa_message(active))
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    return Verdict.true(
        AUTOSCALING,
        "ScalingActive",
        f"{status.get('currentReplicas', 0)} replicas "
        f"(min {spec.get('minReplicas', 1)}, max {spec.get('maxReplicas')})",
    )


def _hpa_message(condition: Object) -> str:
    return _short(f"{condition.get('type')}: {condition.get('reason')}: {condition.get('message')}")


def _since(condition: Object, now: datetime.datetime) -> datetime.timedelta:
    try:
        then = datetime.datetime.fromisoformat(str(condition.get("lastTransitionTime")))
    except ValueError:
        return datetime.timedelta(0)
    return now - then
