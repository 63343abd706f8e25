"""IngressReady and status.url of a service behind the Gateway API (pure): which entry of the
route's status counts, and when what it says is out of date."""

from __future__ import annotations

from typing import Any

from memoserve_operator.status.route import route_url, route_verdict
from tests.operator.helpers import make_isvc

SHARED = {"parentRef": {"name": "edge", "namespace": "infra"}, "hostnames": ["iris.example.com"]}


def route(generation: int, *parents: tuple[str, str, str, int]) -> dict[str, Any]:
    """An HTTPRoute whose status has one entry per (namespace, name, Accepted, observed)."""
    return {
        "metadata": {"generation": generation},
        "status": {
            "parents": [
                {
                    "parentRef": {"name": name, "namespace": namespace},
                    "conditions": [
                        {"type": "Accepted", "status": accepted, "reason": "X",
                         "observedGeneration": observed},
                        {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"},
                    ],
                }
                for namespace, name, accepted, observed in parents
            ]
        },
    }  # fmt: skip


def test_only_our_gateways_entry_counts() -> None:
    isvc = make_isvc(gateway=SHARED)
    other = route(1, ("infra", "other", "True", 1), ("ml", "edge", "True", 1))
    assert route_verdict(isvc, other, None).reason == "RoutePending"
    ours = route(1, ("infra", "other", "False", 1), ("infra", "edge", "True", 1))
    assert route_verdict(isvc, ours, None).reason == "RouteAccepted"
    assert route_url(isvc, ours, None) == "http://iris.example.com/"


def test_an_answer_about_an_older_generation_is_still_pending() -> None:
    isvc = make_isvc(gateway=SHARED)
    stale = route(2, ("infra", "edge", "False", 1))
    assert route_verdict(isvc, stale, None).reason == "RoutePending"
    assert route_url(isvc, stale, None) is None
    assert route_verdict(isvc, route(2, ("infra", "edge", "False", 2)), None).reason == (
        "RouteAcceptanceFailed"
    )


def test_parent_namespace_defaults_to_the_services() -> None:
    isvc = make_isvc(gateway={"parentRef": {"name": "edge"}})
    accepted = route(1, ("ml", "edge", "True", 1))
    assert route_verdict(isvc, accepted, None).message == "accepted by Gateway ml/edge"
    assert route_url(isvc, accepted, None) is None  # no host name, a shared Gateway's address


def test_own_gateway_with_tls_is_https_at_the_first_host_name() -> None:
    spec = {
        "gatewayClassName": "gke-l7-global-external-managed",
        "hostnames": ["a.example.com", "b.example.com"],
        "tls": {"secretName": "t"},
    }
    isvc = make_isvc(gateway=spec)
    gateway = {"status": {"addresses": [{"type": "IPAddress", "value": "34.1.2.3"}]}}
    accepted = route(1, ("ml", "iris", "True", 1))
    assert route_verdict(isvc, accepted, None).reason == "GatewayPending"
    assert route_url(isvc, accepted, gateway) == "https://a.example.com/"


def gateway(accepted: tuple[str, str], programmed: tuple[str, str], observed: int = 1) -> Any:
    def condition(type_: str, state: tuple[str, str]) -> dict[str, Any]:
        return {"type": type_, "status": state[0], "reason": state[1], "message": "said so",
                "observedGeneration": observed}  # fmt: skip

    return {
        "metadata": {"generation": 1},
        "status": {
            "conditions": [condition("Accepted", accepted), condition("Programmed", programmed)]
        },
    }


def test_own_gateway_refused_or_unprogrammable_is_a_failure_pending_waits() -> None:
    isvc = make_isvc(gateway={"gatewayClassName": "gke-l7-rilb", "addressName": "gone"})
    accepted = route(1, ("ml", "iris", "True", 1))
    refused = gateway(("False", "InvalidParameters"), ("False", "Invalid"))
    verdict = route_verdict(isvc, accepted, refused)
    assert (verdict.reason, verdict.message) == (
        "GatewayAcceptanceFailed",
        "Gateway ml/iris was refused: InvalidParameters: said so",
    )
    unusable = gateway(("True", "Accepted"), ("False", "AddressNotUsable"))
    assert route_verdict(isvc, accepted, unusable).reason == "GatewayProgrammingFailed"
    for waiting in (
        gateway(("False", "Pending"), ("False", "Pending")),
        gateway(("True", "Accepted"), ("False", "AddressNotAssigned")),
        gateway(("False", "InvalidParameters"), ("False", "Invalid"), observed=0),
    ):
        assert route_verdict(isvc, accepted, waiting).reason == "AddressPending"
