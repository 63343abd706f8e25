"""The InferenceService that ``memoserve run`` serves, and the serving settings it runs with.

The file is checked exactly as ``memoserve render`` checks it (schema, then the CRD's CEL
rules, same one-line messages). The settings are the ones the operator gives a serving pod:
the plain values of ``pod_env()``, the Deployment's env, read back with
``ServingSettings.from_env()`` as ``memoserve serve`` does in the pod. Only what must differ on
a laptop is overridden: the Redis (a Secret in the cluster; a Valkey / Redis Cluster's IAM auth
and replica reads too), where to listen and download, no drain period, and log lines for a
terminal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from memoserve_cli.run import RunError
from memoserve_contract.pod_settings import front_env, pod_env
from memoserve_contract.settings import LogFormat, ServingSettings, env_var

if TYPE_CHECKING:
    from memoserve_cli.run.cache import CachePlan
    from memoserve_contract.resource.inferenceservice import InferenceService


def load_service(path: Path) -> InferenceService:
    """The one InferenceService in ``path``; RenderError (one line) when the API server would
    refuse it, RunError when the file holds several."""
    from memoserve_operator.render import parse_file

    services = parse_file(path)
    if len(services) > 1:
        names = ", ".join(isvc.name for isvc in services)
        raise RunError(f"{path}: holds {len(services)} InferenceServices ({names}); run one")
    return services[0]


def spec_notices(isvc: InferenceService) -> list[str]:
    """What in the spec this machine does differently, one line each."""
    notices = []
    gpu = isvc.spec.gpu
    if gpu is not None and gpu.type is not None:
        notices.append(
            f"spec.gpu ({gpu.count} x {gpu.type}) applies on GKE; locally the model runs on CPU"
        )
    return notices


def download_dir() -> Path:
    """Where gs:// models are downloaded for local runs (kept, so the next run reuses them)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "memoserve" / "models"


def local_settings(
    isvc: InferenceService,
    plan: CachePlan,
    *,
    host: str,
    port: int,
    log_level: str,
    grpc_port: int = 8081,
    upstream_url: str | None = None,
    model_identity: str = "",
) -> ServingSettings:
    """The pod's serving settings for ``isvc``, with the local overrides (see the module)."""
    # The Secret-held values (URL, password) are not in it: the plan stands in for them.
    if upstream_url is None:
        env = pod_env(isvc, default_drain_seconds=0)
    else:  # a front pod's, with the upstream given (and one process: a laptop's cores)
        env = front_env(isvc, default_drain_seconds=0, cpu_request=None)
        env.pop(env_var("workers"), None)
    # Files mounted from Secrets in the pod; locally the CA and password are the ones given.
    env.pop(env_var("redis_ca_file"), None)
    env.pop(env_var("redis_password_file"), None)
    env.pop(env_var("termination_log"), None)  # a pod's; errors go to the terminal here
    # IAM auth and replica reads are a Valkey / Redis Cluster's: the local stand-in is a plain
    # redis-server (and a --redis-url is AUTHed with --redis-password, if any).
    env.pop(env_var("redis_auth"), None)
    env.pop(env_var("redis_read_replicas"), None)
    # The TLS gRPC port is for GKE's load balancer, with the operator's certificate: locally,
    # gRPC is plaintext only (on --grpc-port, when the spec turns it on).
    for name in ("grpc_port", "grpc_tls_port", "grpc_tls_cert_file", "grpc_tls_key_file"):
        env.pop(env_var(name), None)
    try:
        return ServingSettings.from_env(
            env,
            host=host,
            port=port,
            grpc_port=grpc_port,
            upstream_url=upstream_url,
            model_identity=model_identity or None,
            model_dir=download_dir(),
            drain_seconds=0,  # no load balancer to let go: stop at once
            log_level=log_level.upper(),
            log_format=LogFormat.TEXT,
            cache_enabled=True if plan.enabled else None,
            redis_url=plan.redis_url,
            redis_password=plan.redis_password,
            redis_ca_file=plan.redis_ca_file,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{err['loc'][0]}: {err['msg']}" if err["loc"] else err["msg"] for err in exc.errors()
        )
        raise RunError(problems) from None
