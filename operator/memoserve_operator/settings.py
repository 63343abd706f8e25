"""Operator configuration, read once at start-up and passed explicitly to every builder.

Every field can come from an environment variable ``MEMOSERVE_OPERATOR_`` + the field name in
upper case (e.g. ``MEMOSERVE_OPERATOR_DEFAULT_IMAGE``). Lists are comma-separated, mappings are
JSON. Builders never read the environment themselves: tests pass an ``OperatorSettings`` in.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memoserve_contract.settings import LogFormat

ENV_PREFIX = "MEMOSERVE_OPERATOR_"


class ExternalMetricsAdapter(enum.StrEnum):
    """What serves external.metrics.k8s.io in the cluster: it decides how an HPA's External
    metric selector names labels."""

    # Google's Custom Metrics Stackdriver Adapter over Managed Service for Prometheus: Cloud
    # Monitoring's keys (resource.labels.namespace, metric.labels.NAME).
    STACKDRIVER = "stackdriver"
    # prometheus-adapter (externalRules): the Prometheus label names themselves.
    PROMETHEUS_ADAPTER = "prometheus-adapter"


class OperatorSettings(BaseModel):
    """What the operator needs that an InferenceService does not say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Images: spec.image wins; GPU services default to the CUDA variant of the serving image.
    default_image: str = Field(default="memoserve:0.1.0", min_length=1)
    default_gpu_image: str = Field(default="memoserve:0.1.0-cuda", min_length=1)

    # Where the operator works.
    namespaces: tuple[str, ...] = Field(default=(), description="watched namespaces; () = all")
    field_manager: str = Field(default="memoserve-operator", min_length=1)
    gcp_project: str | None = Field(
        default=None, description="Memorystore project; default: the credentials' project"
    )
    gcp_region: str | None = Field(default=None, description="Memorystore region")
    gcp_network: str = Field(
        default="default",
        min_length=1,
        description="VPC network (name in the project, or projects/P/global/networks/N) of the "
        "Private Service Connect endpoints of Valkey and Redis Cluster instances the spec names "
        "no network for: the GKE cluster's",
    )

    # Memorystore (for Redis, for Valkey, for Redis Cluster). The API endpoints are Google's,
    # with Application Default Credentials (Workload Identity on GKE), unless
    # memorystore_endpoint names an emulator (`memoserve dev memorystore-emulator`, which serves
    # the three APIs on one gRPC port): then the operator speaks plaintext gRPC without
    # credentials. The polls, backoff and refresh below are the same for the three.
    memorystore_endpoint: str | None = Field(
        default=None,
        description="HOST:PORT of a Memorystore API emulator's gRPC port (all three APIs)",
    )
    memorystore_poll_seconds: float = Field(
        default=10.0, gt=0, description="first wait on an operation; doubles up to the max"
    )
    memorystore_max_backoff_seconds: float = Field(
        default=300.0, gt=0, description="longest wait between polls, and between retries"
    )
    memorystore_refresh_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a ready instance is read again after this long at most (API quota)",
    )

    # The model preflight (preflight.py): spec.model.uri is looked up in Cloud Storage, as the
    # pods' Google service account, before their Deployment is applied; a model that is missing
    # or denied to them holds the Deployment and shows in ModelReady. Off by default: it needs
    # the operator's account to be allowed to impersonate the pods' accounts.
    model_preflight: bool = Field(
        default=False, description="check spec.model.uri in Cloud Storage before rolling out"
    )
    storage_endpoint: str | None = Field(
        default=None,
        description="URL of a Cloud Storage emulator for the preflight (no credentials then)",
    )

    # Pod defaults. A service that sets resources overrides these key by key.
    default_requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "1", "memory": "2Gi"})
    run_as_user: int = Field(default=10001, ge=1, description="non-root UID of serving pods")
    default_drain_seconds: int = Field(
        default=15,
        ge=0,
        description="SIGTERM -> not-ready period; covers the load balancer's health checks",
    )
    model_load_timeout_seconds: int = Field(
        default=600, ge=10, description="startupProbe budget for downloading and loading a model"
    )

    # Traces (docs/tracing.md): the OTLP/gRPC endpoint every service's pods export to unless
    # spec.tracing says otherwise (unset: no traces), and the share of new traces kept.
    tracing_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(:[0-9]{1,5})?/?$",
        description="OTLP/gRPC endpoint, e.g. http://otel-collector.observability:4317",
    )
    tracing_sampling_ratio: float = Field(default=0.01, ge=0, le=1)

    # Autoscaling and monitoring.
    default_target_cpu_utilization: int = Field(default=80, ge=1, le=100)
    # The name the custom-metrics adapter exposes the serving pods' gauge under:
    # prometheus-adapter keeps the Prometheus name; Google's Custom Metrics Stackdriver Adapter
    # (Managed Service for Prometheus) calls it
    # "prometheus.googleapis.com|memoserve_inflight_requests|gauge".
    inflight_metric_name: str = Field(default="memoserve_inflight_requests", min_length=1)
    # A split service's model tier (built-in runtime) scales on it: only misses reach it, so
    # the front's CPU says nothing about the GPUs' load.
    default_target_inflight_requests_per_pod: int = Field(
        default=16,
        ge=1,
        le=100000,
        description="the model tier's HPA target when spec.autoscaling names none",
    )
    # A split service's model tier with an external spec.model.server and an in-flight target
    # scales on what its fronts have sent to it or queued for it: the fronts' gauge
    # memoserve_upstream_inflight_requests, summed over the service's front pods, as an External
    # metric (docs/gke.md). The adapter decides its name and the selector's label keys.
    external_metrics_adapter: ExternalMetricsAdapter = Field(
        default=ExternalMetricsAdapter.STACKDRIVER,
        description="which adapter serves external.metrics.k8s.io: its selector label keys",
    )
    upstream_inflight_metric_name: str | None = Field(
        default=None,
        min_length=1,
        description="the External metric's name; default: the adapter's name for "
        "memoserve_upstream_inflight_requests",
    )
    cluster_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
        description="this cluster's name as its metrics carry it (label cluster): the External "
        "metric then sums this cluster's series only (another cluster in the project may run "
        "a service of the same namespace and name)",
    )
    pod_monitoring: bool = Field(
        default=False,
        description="also write a PodMonitoring (Managed Service for Prometheus) per service",
    )
    cache_stats_seconds: float = Field(
        default=30.0,
        ge=0,
        description="read a service's published cache counts (status hitRatio) at most this "
        "often; 0 = never",
    )
    # Where Google Cloud load balancers' health checks and proxies (GFEs) connect from: the
    # serving pods' NetworkPolicy lets them in when a service has an Ingress.
    lb_source_ranges: tuple[str, ...] = Field(
        default=("35.191.0.0/16", "130.211.0.0/22"),
        description="load balancer health-check and proxy source ranges",
    )

    # How often a settled service (Ready, current generation) is checked anyway: repairs drift
    # that no watch event reports (the <name>-redis Secret is not watched: no list/watch on
    # Secrets). Services that are not Ready are checked every recheck_seconds (crash loops and
    # metrics show up in status without an event on a watched child). Reads only: a check that
    # finds nothing to do writes nothing.
    resync_seconds: int = Field(default=300, ge=10)
    recheck_seconds: int = Field(default=30, ge=5)

    # The operator process itself.
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON
    liveness_url: str | None = Field(
        default=None, description="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Prometheus /metrics of reconciles and errors"
    )

    # Leader election (leader.py): of the operator's replicas, the one holding this Lease
    # reconciles; the others stand by. The leader renews every third of the lease duration and
    # stops acting when no renewal succeeded for two thirds of it.
    leader_election: bool = True
    lease_name: str = Field(default="memoserve-operator", min_length=1)
    lease_namespace: str | None = Field(
        default=None,
        description="None: the pod's own namespace (POD_NAMESPACE), else memoserve-system",
    )
    lease_duration_seconds: int = Field(
        default=15, ge=3, description="how long a standby waits after the last renewal it saw"
    )
    lease_retry_seconds: float = Field(
        default=2.0, gt=0, description="a standby's tries; a leader's retries of a failed renewal"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> OperatorSettings:
        """Settings from an environment mapping; ``overrides`` (e.g. CLI flags) win."""
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = environ.get(env_var(name))
            if raw is None:
                continue
            if field.annotation == tuple[str, ...]:
                values[name] = tuple(part.strip() for part in raw.split(",") if part.strip())
            elif field.annotation == dict[str, str]:
                try:
                    values[name] = json.loads(raw)
                except ValueError:
                    raise SettingsError(f"{env_var(name)}: not a JSON object") from None
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = env_var(str(first["loc"][0])) if first["loc"] else "operator settings"
            raise SettingsError(f"{where}: {first['msg']}") from None


class SettingsError(ValueError):
    """Operator configuration that does not validate; ``str()`` is one line."""


def env_var(field: str) -> str:
    """The environment variable of an OperatorSettings field."""
    return ENV_PREFIX + field.upper()
