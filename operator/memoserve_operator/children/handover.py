"""Handing a Deployment's replicas over to its HPA without a dip.

Server-side apply removes a field that its manager owned alone and no longer applies, and a
Deployment without spec.replicas is defaulted to 1. So when autoscaling is switched on (the
desired Deployment has no replicas) while the operator still owns the live count, an apply under a
field manager of its own first sets the same value (both managers own it then); the operator's
apply then lets go of it, and the count stays until the HPA changes it. This is the transfer of
ownership the server-side apply documentation describes for handing replicas to an HPA.
"""

from __future__ import annotations

from typing import Any

from memoserve_operator.kube.client import KubeClient, resource_of

Object = dict[str, Any]
HANDOVER = "-handover"  # appended to the operator's field manager


def owns_replicas(live: Object, field_manager: str) -> bool:
    """Whether ``field_manager`` applied the live Deployment's spec.replicas (managedFields)."""
    return any(
        entry.get("manager") == field_manager
        and entry.get("operation") == "Apply"
        and "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        for entry in live.get("metadata", {}).get("managedFields") or []
    )


def drops_replicas(desired: Object, live: Object | None) -> bool:
    """``desired`` leaves out the replicas that ``live`` has: its apply may remove them."""
    return (
        desired["kind"] == "Deployment"
        and "replicas" not in desired["spec"]
        and live is not None
        and (live.get("spec") or {}).get("replicas") is not None
    )


def handover(desired: Object, live: Object, field_manager: str) -> Object | None:
    """The apply that keeps ``live``'s replicas, when ``desired`` drops the ones
    ``field_manager`` owns; None when nothing needs handing over."""
    if not drops_replicas(desired, live) or not owns_replicas(live, field_manager):
        return None
    meta = desired["metadata"]
    return {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": live["spec"]["replicas"]},
    }


async def hand_over_replicas(
    kube: KubeClient, desired: Object, live: Object | None, field_manager: str
) -> bool:
    """Apply the handover if ``desired``'s apply would remove replicas; whether it did."""
    if not drops_replicas(desired, live):
        return False
    assert live is not None
    if "managedFields" not in live["metadata"]:  # the watches' index keeps none: read it
        meta = desired["metadata"]
        resource = resource_of(desired["apiVersion"], desired["kind"])
        live = await kube.get(resource, meta["namespace"], meta["name"])
    plan = handover(desired, live, field_manager) if live is not None else None
    if plan is None:
        return False
    await kube.apply(plan, field_manager + HANDOVER)
    return True
