"""``memoserve operator``: run the kopf operator in this process until SIGTERM.

Standalone (no kopf peering): exactly one operator pod runs (manifests/base/deployment.yaml,
replicas 1, strategy Recreate). Watches the namespaces of MEMOSERVE_OPERATOR_NAMESPACES, or the
whole cluster when that is empty; serves kopf's liveness endpoint at
MEMOSERVE_OPERATOR_LIVENESS_URL and Prometheus metrics on MEMOSERVE_OPERATOR_METRICS_PORT.
"""

from __future__ import annotations

from typing import Any

from memoserve_operator.settings import OperatorSettings


def kopf_options(settings: OperatorSettings) -> dict[str, Any]:
    """Where kopf looks, and how it reports liveness (the arguments of kopf.run)."""
    return {
        "standalone": True,
        "clusterwide": not settings.namespaces,
        "namespaces": list(settings.namespaces),
        "liveness_endpoint": settings.liveness_url,
    }


def run_operator(settings: OperatorSettings) -> None:
    """Run the operator until it is stopped (kopf handles SIGINT and SIGTERM)."""
    import kopf
    from prometheus_client import start_http_server

    import memoserve_operator.handlers  # noqa: F401  # registers the handlers with kopf
    from memoserve_operator.metrics import Metrics
    from memoserve_serving.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    metrics = Metrics()
    server = None
    if settings.metrics_port is not None:
        server, _ = start_http_server(settings.metrics_port, registry=metrics.registry)
    try:
        kopf.run(memo=kopf.Memo(settings=settings, metrics=metrics), **kopf_options(settings))
    finally:
        if server is not None:
            server.shutdown()
