"""The metrics APIs a GKE cluster serves to the HPA controller, for the e2e control plane.

GKE runs metrics-server (``metrics.k8s.io``: pod CPU and memory) and, with Managed Service for
Prometheus, a custom metrics adapter (``custom.metrics.k8s.io``: our in-flight requests per
pod; ``external.metrics.k8s.io``: the cache fronts' in-flight misses, summed per service).
kwok's pods have no kubelet to measure, so this small HTTPS server answers the three APIs
through the API server's aggregation layer (APIService -> Service -> Endpoints), with values
the tests set per pod: annotations ``e2e.memoserve.dev/cpu`` (a quantity, default ``0``) and
``e2e.memoserve.dev/<metric name>`` (default ``0``; the Prometheus name, also for an adapter's
``prometheus.googleapis.com|NAME|gauge``). The HPA controller then computes and scales exactly
as it would on GKE.

External metrics are answered as the Custom Metrics Stackdriver Adapter answers them over
Managed Service for Prometheus: the request's namespace is not a filter, the selector is
(``resource.labels.namespace``, and ``metric.labels.memoserve_service``: the pods' label
``app.kubernetes.io/instance``, as the operator's PodMonitoring copies it); one item per pod.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ANNOTATION_PREFIX = "e2e.memoserve.dev/"
RESOURCE_GV = "metrics.k8s.io/v1beta1"
CUSTOM_GV = "custom.metrics.k8s.io/v1beta2"
EXTERNAL_GV = "external.metrics.k8s.io/v1beta1"
# The selector keys the external API understands, and the pod label each one stands for.
EXTERNAL_KEYS = {
    "resource.labels.namespace": None,  # the namespace itself
    "metric.labels.memoserve_service": "app.kubernetes.io/instance",
}


def node_address() -> str:
    """This machine's non-loopback IPv4 address: Endpoints may not point at 127.0.0.0/8."""
    candidates: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # sends nothing: only picks the route's source
            candidates.append(probe.getsockname()[0])
    except OSError:  # no route out of this machine: ask what its host name resolves to
        candidates += [
            str(info[4][0])
            for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        ]
    for address in candidates:
        if not address.startswith("127."):
            return address
    raise RuntimeError(
        "the e2e metrics API needs a non-loopback IPv4 address on this machine "
        "(none found by route or by host name)"
    )


class MetricsApi:
    """Serves both metrics APIs on ``address``; pod lists come from the API server."""

    def __init__(self, api_server: str, token: str, ca: Path, cert: Path, key: Path) -> None:
        self.api_server, self.token = api_server, token
        self._client_context = ssl.create_default_context(cafile=str(ca))
        self._server = ThreadingHTTPServer(("0.0.0.0", 0), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def registration(self, namespace: str = "kube-system") -> list[dict[str, Any]]:
        """The objects that route both APIs through the aggregation layer to this server."""
        name = "memoserve-e2e-metrics"
        service = {"namespace": namespace, "name": name, "port": 443}
        objects: list[dict[str, Any]] = [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"ports": [{"port": 443, "targetPort": self.port, "protocol": "TCP"}]},
            },
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace},
                "subsets": [
                    {
                        "addresses": [{"ip": node_address()}],
                        "ports": [{"port": self.port, "protocol": "TCP"}],
                    }
                ],
            },
        ]
        for group_version in (RESOURCE_GV, CUSTOM_GV, EXTERNAL_GV):
            group, version = group_version.split("/")
            objects.append(
                {
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": f"{version}.{group}"},
                    "spec": {
                        "group": group,
                        "version": version,
                        "service": service,
                        "insecureSkipTLSVerify": True,  # a throwaway certificate on loopback
                        "groupPriorityMinimum": 100,
                        "versionPriority": 100,
                    },
                }
            )
        return objects

    # -- answers ----------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]  # "|" comes as %7C
        if parts == ["apis", *RESOURCE_GV.split("/")]:
            return 200, _resource_list(RESOURCE_GV, [("pods", "PodMetrics", True)])
        if parts == ["apis", *CUSTOM_GV.split("/")]:
            return 200, _resource_list(CUSTOM_GV, [("pods/*", "MetricValueList", True)])
        if parts == ["apis", *EXTERNAL_GV.split("/")]:
            return 200, _resource_list(
                EXTERNAL_GV, [("externalmetrics", "ExternalMetricValueList", True)]
            )
        selector = query.get("labelSelector", "")
        # /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods
        if (
            len(parts) == 6
            and parts[:3] == ["apis", *RESOURCE_GV.split("/")]
            and parts[5] == "pods"
        ):
            return 200, self._pod_metrics(parts[4], selector)
        # /apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/pods/*/METRIC
        if len(parts) == 8 and parts[:3] == ["apis", *CUSTOM_GV.split("/")] and parts[5] == "pods":
            return 200, self._custom_metrics(parts[4], selector, parts[7])
        # /apis/external.metrics.k8s.io/v1beta1/namespaces/NS/METRIC
        if len(parts) == 6 and parts[:3] == ["apis", *EXTERNAL_GV.split("/")]:
            return self._external_metrics(selector, parts[5])
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}

    def _pods(self, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"labelSelector": selector})
        where = "" if namespace is None else f"/namespaces/{namespace}"
        request = urllib.request.Request(
            f"{self.api_server}/api/v1{where}/pods?{query}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, context=self._client_context, timeout=10) as response:
            items: list[dict[str, Any]] = json.load(response)["items"]
        return [p for p in items if p.get("status", {}).get("phase") == "Running"]

    def _pod_metrics(self, namespace: str, selector: str) -> dict[str, Any]:
        items = []
        for pod in self._pods(namespace, selector):
            cpu = _annotation(pod, "cpu")
            items.append(
                {
                    "metadata": {"name": pod["metadata"]["name"], "namespace": namespace},
                    "timestamp": _now(),
                    "window": "30s",
                    "containers": [
                        {"name": c["name"], "usage": {"cpu": cpu, "memory": "64Mi"}}
                        for c in pod["spec"]["containers"]
                    ],
                }
            )
        return {"kind": "PodMetricsList", "apiVersion": RESOURCE_GV, "metadata": {}, "items": items}

    def _custom_metrics(self, namespace: str, selector: str, metric: str) -> dict[str, Any]:
        items = [
            {
                "describedObject": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": pod["metadata"]["name"],
                    "apiVersion": "/v1",
                },
                "metric": {"name": metric},
                "timestamp": _now(),
                "windowSeconds": 60,
                "value": _annotation(pod, metric),
            }
            for pod in self._pods(namespace, selector)
        ]
        return {"kind": "MetricValueList", "apiVersion": CUSTOM_GV, "metadata": {}, "items": items}

    def _external_metrics(self, selector: str, metric: str) -> tuple[int, dict[str, Any]]:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
        unknown = sorted(set(wanted) - set(EXTERNAL_KEYS))
        if unknown:  # the adapter refuses what it cannot filter by, and so do we
            return 400, {"kind": "Status", "code": 400, "message": f"not allowed: {unknown}"}
        namespace = wanted.pop("resource.labels.namespace", None)
        pod_selector = ",".join(f"{EXTERNAL_KEYS[k]}={v}" for k, v in sorted(wanted.items()))
        exported = metric.split("|")[1] if "|" in metric else metric
        items = [
            {
                "metricName": metric,
                "metricLabels": {"pod": pod["metadata"]["name"]},
                "timestamp": _now(),
                "value": _annotation(pod, exported),
            }
            for pod in self._pods(namespace, pod_selector)
        ]
        body = {"kind": "ExternalMetricValueList", "apiVersion": EXTERNAL_GV, "metadata": {}}
        return 200, body | {"items": items}


def _annotation(pod: dict[str, Any], name: str) -> str:
    return str(pod["metadata"].get("annotations", {}).get(ANNOTATION_PREFIX + name, "0"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resource_list(group_version: str, resources: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": name,
                "singularName": "",
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["get", "list"],
            }
            for name, kind, namespaced in resources
        ],
    }


def _handler(api: MetricsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's naming
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                code, body = api.answer(url.path, query)
            except OSError as exc:  # the API server did not answer the pod list
                code, body = 503, {"kind": "Status", "message": str(exc), "code": 503}
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the HPA controller asks every few seconds

    return Handler
