"""What the Gateway API objects say (pure): the HTTPRoute's status, and the service's own
Gateway's address -> IngressReady and status.url.

The Gateway's controller (GKE's, in a cluster) writes ``status.parents[]`` on the route: per
Gateway, ``Accepted`` (the Gateway takes the route) and ``ResolvedRefs`` (its backends exist).
A route a Gateway refuses, or whose backends it cannot resolve, is a failure (a reason ending
in Failed: Degraded in Argo CD) with the Gateway's own reason and message; one no Gateway has
looked at yet, or whose current generation it has not, is still pending. The condition keeps
the Ingress's type (IngressReady): it is the service's front door either way, as in KServe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memoserve_contract.resource.gateway import GatewaySpec
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.resource.status import ConditionType
from memoserve_operator.builders.gateway import uses_tls
from memoserve_operator.builders.http_route import parent_ref
from memoserve_operator.verdict import Verdict

Object = Mapping[str, Any]
INGRESS = ConditionType.INGRESS_READY
MESSAGE_LIMIT = 1024


def route_verdict(isvc: InferenceService, route: Object | None, gateway: Object | None) -> Verdict:
    """IngressReady of a service behind the Gateway API."""
    spec = _spec(isvc)
    if spec.owns_gateway and gateway is None:
        return Verdict.false(INGRESS, "GatewayPending", "the Gateway does not exist yet")
    if route is None:
        return Verdict.false(INGRESS, "RoutePending", "the HTTPRoute does not exist yet")
    where = _parent_name(isvc)
    conditions = _parent_conditions(isvc, route)
    generation = (route.get("metadata") or {}).get("generation")
    accepted, resolved = conditions.get("Accepted"), conditions.get("ResolvedRefs")
    if accepted is None or _stale(accepted, generation) or accepted.get("reason") == "Pending":
        return Verdict.false(
            INGRESS, "RoutePending", f"waiting for Gateway {where} to accept the HTTPRoute"
        )
    if accepted.get("status") != "True":
        return Verdict.false(
            INGRESS, "RouteAcceptanceFailed", _said(f"Gateway {where} refused the route", accepted)
        )
    if resolved is not None and resolved.get("status") == "False":
        return Verdict.false(
            INGRESS,
            "RouteRefsFailed",
            _said(f"Gateway {where} cannot send to the route's backends", resolved),
        )
    if spec.owns_gateway:
        found = gateway_address(gateway)
        if found is None:
            return Verdict.false(
                INGRESS, "AddressPending", "the Google Cloud load balancer is being created"
            )
        return Verdict.true(INGRESS, "RouteAccepted", f"Gateway {where} at {found}")
    return Verdict.true(INGRESS, "RouteAccepted", f"accepted by Gateway {where}")


def route_url(isvc: InferenceService, route: Object | None, gateway: Object | None) -> str | None:
    """Where clients send requests: the first host name, else the service's own Gateway's
    address; None until the Gateway serves the route (a shared Gateway without host names:
    its address is its owner's, not looked up)."""
    spec = _spec(isvc)
    if not route_verdict(isvc, route, gateway).ok:
        return None
    host = spec.hostnames[0] if spec.hostnames else None
    if spec.owns_gateway:
        host = host or gateway_address(gateway)
    if host is None:
        return None
    return f"{'https' if uses_tls(spec) else 'http'}://{host}{spec.path}"


def gateway_address(gateway: Object | None) -> str | None:
    """The load balancer's address from the Gateway's status."""
    for entry in ((gateway or {}).get("status") or {}).get("addresses") or []:
        if isinstance(entry, Mapping) and entry.get("value"):
            return str(entry["value"])
    return None


def _spec(isvc: InferenceService) -> GatewaySpec:
    spec = isvc.spec.gateway
    assert spec is not None  # asked only for a service with spec.gateway
    return spec


def _parent_name(isvc: InferenceService) -> str:
    ref = parent_ref(isvc)
    return f"{ref.get('namespace', isvc.namespace)}/{ref['name']}"


def _parent_conditions(isvc: InferenceService, route: Object) -> dict[str, Object]:
    """The conditions of the status entry for our parent Gateway (by namespace and name)."""
    want = _parent_name(isvc)
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if f"{ref.get('namespace', isvc.namespace)}/{ref.get('name')}" != want:
            continue
        items = parent.get("conditions") or []
        return {c.get("type", ""): c for c in items if isinstance(c, Mapping)}
    return {}


def _stale(condition: Object, generation: Any) -> bool:
    observed = condition.get("observedGeneration")
    return isinstance(observed, int) and isinstance(generation, int) and observed < generation


def _said(what: str, condition: Object) -> str:
    text = f"{what}: {condition.get('reason')}: {condition.get('message') or ''}".rstrip(": ")
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."
