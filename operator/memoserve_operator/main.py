"""``memoserve operator``: run the kopf operator in this process until SIGTERM.

kopf runs standalone (no kopf peering, which pauses operators instead of electing one). With
MEMOSERVE_OPERATOR_LEADER_ELECTION (the default), several replicas may run: the one holding the
Lease reconciles, the others stand by (leader.py); without it, exactly one replica must run.
Watches the namespaces of MEMOSERVE_OPERATOR_NAMESPACES, or the whole cluster when that is empty;
serves kopf's liveness endpoint at MEMOSERVE_OPERATOR_LIVENESS_URL (standby replicas answer it
too) and Prometheus metrics on MEMOSERVE_OPERATOR_METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from memoserve_operator.settings import OperatorSettings

# kopf's words (f-strings: no args to match) for the routine handlers' every success.
ROUTINE_SUCCESSES = frozenset(
    {"Handler 'service_seen' succeeded.", "Handler 'child_changed' succeeded."}
)


class QuietRoutine(logging.Filter):
    """Drops kopf's INFO record for every InferenceService event handed to the resync loop and
    every child event: one per change of any of them (hundreds a second at 1000 services),
    saying nothing. Failures are warnings and errors, which pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and record.name == "kopf.objects"
            and record.getMessage() in ROUTINE_SUCCESSES
        )


def kopf_options(settings: OperatorSettings) -> dict[str, Any]:
    """Where kopf looks, and how it reports liveness (the arguments of kopf.run)."""
    return {
        "standalone": True,
        "clusterwide": not settings.namespaces,
        "namespaces": list(settings.namespaces),
        "liveness_endpoint": settings.liveness_url,
    }


def run_operator(settings: OperatorSettings) -> None:
    """Run the operator until it is stopped (kopf handles SIGINT and SIGTERM).

    Exits with status 1 when this replica led and lost the Lease: Kubernetes restarts it, and
    it comes back as a standby.
    """
    import kopf
    from prometheus_client import start_http_server

    import memoserve_operator.handlers  # noqa: F401  # registers the handlers with kopf
    from memoserve_contract.logs import configure_logging
    from memoserve_operator.kube.leader import LeadershipLost, run_with_election
    from memoserve_operator.metrics import Metrics

    configure_logging(settings.log_level, settings.log_format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietRoutine())
    metrics = Metrics()
    memo = kopf.Memo(settings=settings, metrics=metrics)
    server = None
    if settings.metrics_port is not None:
        server, _ = start_http_server(settings.metrics_port, registry=metrics.registry)

    async def operate(stop_flag: asyncio.Event) -> None:
        await kopf.operator(memo=memo, stop_flag=stop_flag, **kopf_options(settings))

    try:
        if settings.leader_election:
            asyncio.run(run_with_election(settings, os.environ, operate))
        else:
            kopf.run(memo=memo, **kopf_options(settings))
    except LeadershipLost as exc:
        logging.getLogger(__name__).error("%s: exiting, to come back as a standby", exc)
        raise SystemExit(1) from None
    finally:
        if server is not None:
            server.shutdown()
