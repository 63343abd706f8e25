"""The operator turns the GPU example into its children on a real control plane; the pods land
on the kwok GPU pool, readiness flows into the status, and kubectl shows it as designed."""

from __future__ import annotations

import base64
import datetime
import json

from memoserve_operator.builders.grpc_tls import TlsMaterial
from memoserve_operator.children.compare import contains
from memoserve_operator.grpc_tls.certificate import still_good
from memoserve_operator.render import render_objects
from memoserve_operator.settings import OperatorSettings
from tests.e2e.helpers import (
    CHILD_KINDS,
    EXAMPLES,
    ISVC,
    apply_example,
    children,
    kubectl_type,
    wait_for,
    wait_ready,
)
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

GPU_EXAMPLE = "gpu-l4-hpa-ingress.yaml"


def _publish_load_balancer(plane: ControlPlane, namespace: str, name: str) -> None:
    """What GKE's Ingress controller and certificate controller write once they are done."""
    address = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}
    plane.kubectl(
        "patch", "ingress", name, "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(address),
    )  # fmt: skip
    active = {"status": {"certificateStatus": "Active"}}
    plane.kubectl(
        "patch", "managedcertificate", name, "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(active),
    )  # fmt: skip


def test_gpu_example_converges_into_every_child(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    name = apply_example(control_plane, namespace, GPU_EXAMPLE)
    found = wait_for(
        lambda: (c := children(control_plane, namespace, name)) and all(c.values()) and c,
        "every child of the GPU example",
    )
    assert {kind: len(items) for kind, items in found.items()} == dict.fromkeys(CHILD_KINDS, 1)
    assert control_plane.get("secret", f"{name}-redis", "-n", namespace)["type"] == "Opaque"

    # Each live child holds every field the pure builders produce (plus API server defaults),
    # by the operator's own drift rule (compare.contains: quantities, list-map keys).
    rendered = render_objects(
        (EXAMPLES / GPU_EXAMPLE).read_text(), OperatorSettings(), namespace=namespace
    )
    for wanted in rendered:
        if wanted["kind"] == "Secret":
            continue
        live = control_plane.get(kubectl_type(wanted), wanted["metadata"]["name"], "-n", namespace)
        assert contains(live["metadata"]["labels"], wanted["metadata"]["labels"]), wanted["kind"]
        owner = live["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"], o["controller"]) for o in owner] == [
            ("InferenceService", name, True)
        ]
        for part in ("spec", "data"):
            if part in wanted:
                assert contains(live[part], wanted[part]), f"{wanted['kind']}.{part} differs"

    # GPU scheduling as GKE does it: the pods run on the L4 pool, and only there.
    def ready_pods() -> list[dict[str, object]] | None:
        pods = control_plane.get(
            "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}"
        )
        ready = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
        return ready or None

    pods = wait_for(ready_pods, "a Running serving pod")
    for pod in pods:
        node = control_plane.get("node", pod["spec"]["nodeName"])  # type: ignore[index]
        assert node["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
        limits = pod["spec"]["containers"][0]["resources"]["limits"]  # type: ignore[index]
        assert limits["nvidia.com/gpu"] == "1"

    # Ready replicas flow into the status; Ready waits for the load balancer and certificate.
    wait_for(
        lambda: (
            control_plane.get(ISVC, name, "-n", namespace)["status"].get("replicaSummary") == "1/1"
        ),
        "status.replicaSummary 1/1",
    )
    status = control_plane.get(ISVC, name, "-n", namespace)["status"]
    assert status["readyReplicas"] == 1
    assert "url" not in status, "no URL before the load balancer has an address"

    _publish_load_balancer(control_plane, namespace, name)
    wait_ready(control_plane, namespace, name)
    status = control_plane.get(ISVC, name, "-n", namespace)["status"]
    assert status["url"] == "https://resnet.example.com/"

    table = control_plane.kubectl("get", "inferenceservices", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "READY",
        "URL",
        "REPLICAS",
        "CACHE",
        "HIT%",
        "CANARY%",
        "AGE",
    ]
    row = table[1].split()
    assert row[:4] == [name, "True", "https://resnet.example.com/", "1/1"]
    wide = control_plane.kubectl("get", "misvc", name, "-n", namespace, "-o", "wide").stdout
    assert "gs://my-models/resnet50/v3/model.onnx" in wide
    assert "nvidia-l4" in wide


def test_grpc_example_gets_its_ports_routes_and_a_kept_certificate(
    control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    name = apply_example(control_plane, namespace, "grpc.yaml")
    secret = wait_for(
        lambda: control_plane.get_or_none("secret", f"{name}-grpc-tls", "-n", namespace),
        "the gRPC TLS Secret",
    )
    assert secret["type"] == "kubernetes.io/tls"
    material = TlsMaterial(
        base64.b64decode(secret["data"]["tls.crt"]).decode(),
        base64.b64decode(secret["data"]["tls.key"]).decode(),
    )
    assert still_good(material, namespace, name, datetime.datetime.now(datetime.UTC))

    # The Secret comes first (the certificate is made before the children are applied): wait
    # for the rest as well, a loaded machine may not have applied it yet.
    service = wait_for(
        lambda: control_plane.get_or_none("service", name, "-n", namespace), "the Service"
    )
    assert [(p["name"], p["port"], p.get("appProtocol")) for p in service["spec"]["ports"]] == [
        ("http", 80, None), ("grpc", 8081, "kubernetes.io/h2c"), ("grpc-tls", 8443, "HTTP2"),
    ]  # fmt: skip
    annotations = service["metadata"]["annotations"]
    assert json.loads(annotations["cloud.google.com/app-protocols"]) == {"grpc-tls": "HTTP2"}
    ingress = wait_for(
        lambda: control_plane.get_or_none("ingress", name, "-n", namespace), "the Ingress"
    )
    routes = {
        p["path"]: p["backend"]["service"]["port"]["number"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes["/inference.GRPCInferenceService"] == 8443
    assert routes["/"] == 80
    deployment = wait_for(
        lambda: control_plane.get_or_none("deployment", name, "-n", namespace), "the Deployment"
    )
    template = deployment["spec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["grpc-tls"]["secret"]["secretName"] == f"{name}-grpc-tls"
