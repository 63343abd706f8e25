"""Condition bookkeeping (pure): metav1.Condition semantics for the InferenceService status.

A reconcile judges each part of a service (serving, cache, ingress, autoscaling) as a
``Verdict``; ``merge_conditions`` turns the verdicts into the status's conditions, keeping a
condition's lastTransitionTime unless its status changes, and summarises them in Ready.

Reasons follow Argo CD's health check (manifests/argocd/resource_customizations/
serving.memoserve.dev/InferenceService/health.lua): a failure that waiting will not fix ends in
Failed, Failure, Error or BackOff (or is InvalidSpec, ErrImagePull, ...) and makes Argo CD say
Degraded; anything else that is not True reads as Progressing.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from memoserve_contract.resource.status import (
    Condition,
    ConditionType,
    InferenceServiceStatus,
)
from memoserve_operator.verdict import Verdict

READY_REASON = "Ready"


def timestamp(now: datetime.datetime) -> str:
    """RFC 3339 in UTC, whole seconds, as the API server writes metav1.Time."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[Condition],
    verdict: Verdict,
    *,
    generation: int | None,
    now: str,
) -> list[Condition]:
    """``conditions`` with ``verdict``'s type replaced (or appended).

    lastTransitionTime is kept while the status stays the same, even when reason or message
    change; it is ``now`` when the status changes or the condition is new.
    """
    old = next((c for c in conditions if c.type == verdict.type), None)
    keep = old is not None and old.status == verdict.status and old.last_transition_time
    new = Condition(
        type=verdict.type,
        status=verdict.status,
        reason=verdict.reason,
        message=verdict.message,
        last_transition_time=old.last_transition_time if keep and old else now,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == verdict.type else c for c in conditions]


def summarize(parts: Sequence[Verdict], ready_message: str) -> Verdict:
    """Ready: True when every part is True; else the first part that is not, reason and all
    (so a failure of a part is a failure of the whole for Argo CD and ``kubectl wait``)."""
    for part in parts:
        if not part.ok:
            return Verdict(
                ConditionType.READY,
                part.status,  # False, or Unknown when that part cannot tell
                part.reason,
                f"{part.type}: {part.message}" if part.message else part.type,
            )
    return Verdict.true(ConditionType.READY, READY_REASON, ready_message)


def merge_conditions(
    old: Sequence[Condition],
    parts: Sequence[Verdict],
    *,
    ready_message: str,
    generation: int | None,
    now: str,
) -> list[Condition]:
    """Ready first, then the parts in the order given. Conditions of parts that no longer
    apply (e.g. IngressReady after the ingress was switched off) are dropped."""
    conditions: list[Condition] = []
    for verdict in (summarize(parts, ready_message), *parts):
        previous = [c for c in old if c.type == verdict.type]
        conditions += set_condition(previous, verdict, generation=generation, now=now)
    return conditions


def comparable(status: InferenceServiceStatus | None) -> dict[str, object]:
    """A status as JSON without lastTransitionTime: two statuses that differ only there are
    the same status (a write would change nothing a reader cares about)."""
    if status is None:
        return {}
    data = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for condition in data.get("conditions", []):
        condition.pop("lastTransitionTime", None)
    return data
