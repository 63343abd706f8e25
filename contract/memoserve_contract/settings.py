"""The contract between the operator and the serving pods.

Every setting the model server reads is a field of :class:`ServingSettings`; its environment
variable is ``MEMOSERVE_`` + the field name in upper case. The operator builds pod env with
:meth:`ServingSettings.to_env` (or :func:`env_var` for values that come from a Secret), and the
server reads it back with :meth:`ServingSettings.from_env`. Nothing else spells these names.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ENV_PREFIX = "MEMOSERVE_"


class ModelFormat(enum.StrEnum):
    ONNX = "onnx"
    SKLEARN = "sklearn"
    XGBOOST = "xgboost"


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


class HttpTransport(enum.StrEnum):
    UVICORN = "uvicorn"  # uvicorn's httptools protocol, one write per response
    GRANIAN = "granian"  # granian: HTTP/1.1 in Rust, outside the GIL, the app over RSGI


class GrpcTransport(enum.StrEnum):
    NATIVE = "native"  # pygrpc-native
    AIO = "aio"  # grpcio's grpc.aio


class ServingSettings(BaseModel):
    """Configuration of one serving process (one model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The model.
    model_name: str = Field(min_length=1, description="v2 model name served at /v2/models/{name}")
    model_uri: str = Field(
        default="",
        description="gs://bucket/prefix[/file] or a local path (required without upstream_url)",
    )
    model_format: ModelFormat | None = Field(
        default=None, description="how to load the model files (required without upstream_url)"
    )
    model_version: str | None = Field(default=None, description="v2 model version, if any")
    model_dir: Path = Field(
        default=Path("/tmp/memoserve/models"), description="where gs:// models are downloaded"
    )

    # HTTP.
    host: str = Field(default="0.0.0.0", description="listen address")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP listen port; 0 = any")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0, description="413 above this")
    drain_seconds: float = Field(
        default=5.0, ge=0, description="on SIGTERM: report not-ready this long before stopping"
    )
    http_transport: HttpTransport = Field(
        default=HttpTransport.GRANIAN,
        description="the HTTP server: granian (HTTP/1.1 in Rust, outside the GIL: about a "
        "quarter less CPU per REST hit) or uvicorn (the fallback)",
    )

    # gRPC (the v2 GRPCInferenceService and grpc.health.v1, on the same host, model and cache).
    grpc_enabled: bool = Field(default=True, description="serve the v2 gRPC API on grpc_port")
    grpc_port: int = Field(default=8081, ge=0, le=65535, description="gRPC listen port; 0 = any")
    grpc_transport: GrpcTransport = Field(
        default=GrpcTransport.NATIVE,
        description="the gRPC server: native (pygrpc-native: HTTP/2 and gRPC in Rust, outside "
        "the GIL) or aio (grpcio's grpc.aio, the fallback); the TLS port is always grpc.aio",
    )
    grpc_tls_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="also serve gRPC over TLS on this port (e.g. for a load balancer that sends "
        "HTTP/2 only over TLS); unset = none",
    )
    grpc_tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate (chain) of the TLS gRPC port"
    )
    grpc_tls_key_file: Path | None = Field(
        default=None, description="PEM private key of the TLS gRPC port"
    )

    # Processes (a cache front's cores: docs/front.md). Each worker listens on the same ports
    # with SO_REUSEPORT and the kernel spreads connections between them.
    workers: int = Field(
        default=1, ge=1, le=64, description="server processes sharing the ports (SO_REUSEPORT)"
    )
    reuse_port: bool = Field(
        default=False, description="listen with SO_REUSEPORT (set for each of several workers)"
    )
    worker_metrics_dir: Path | None = Field(
        default=None,
        description="set for each of several workers: where each writes its metrics, which "
        "/metrics merges into the pod's",
    )

    # The cache front (docs/front.md): misses go to a v2 server upstream instead of a model here.
    upstream_url: str | None = Field(
        default=None,
        description="http(s)://HOST:PORT of the v2 server that computes misses (the model tier); "
        "set = no model is loaded here",
    )
    upstream_model_name: str | None = Field(
        default=None, description="the model's v2 name upstream; default: model_name"
    )
    model_identity: str = Field(
        default="",
        description="what names the upstream's model in cache keys (the operator: a digest of "
        "its URI, image and arguments), mixed with the upstream's model metadata",
    )
    upstream_timeout_seconds: float = Field(
        default=60.0, gt=0, description="longest wait for an upstream answer"
    )
    upstream_max_connections: int = Field(
        default=64, ge=1, description="calls in flight to the upstream, per process"
    )
    upstream_max_queued: int = Field(
        default=256,
        ge=0,
        description="misses waiting for a connection beyond those; more get 503 + Retry-After",
    )
    upstream_batch_max_size: int = Field(
        default=32,
        ge=1,
        description="rows one upstream call carries at most when misses queue (the upstream's "
        "model must list a variable batch dimension); 1 = every miss its own call",
    )
    upstream_batch_concurrency: int = Field(
        default=1,
        ge=1,
        description="upstream calls in flight beyond which misses queue and go as one call "
        "(a full batch goes at once); 1 = as Triton's dynamic batcher with one model instance",
    )

    # Redis (Memorystore, or any Redis).
    redis_url: str | None = Field(
        default=None, description="redis:// or rediss://; unset = no cache"
    )
    redis_password: SecretStr | None = Field(default=None, description="Memorystore AUTH string")
    redis_password_file: Path | None = Field(
        default=None,
        description="a file holding the AUTH string (a mounted Secret); wins over redis_password; "
        "a missing file means no password",
    )
    redis_ca_file: Path | None = Field(default=None, description="server CA for rediss://")
    redis_auth: Literal["password", "iam"] = Field(
        default="password",
        description="password: AUTH with redis_password[_file] when one is set; iam: AUTH as "
        "user default with an access token of the pod's Google service account (Memorystore for "
        "Valkey / Redis Cluster IAM auth), fetched with Application Default Credentials",
    )
    redis_read_replicas: bool = Field(
        default=False,
        description="on a cluster, read answers from replicas too (READONLY): more hit "
        "throughput, but a hit may be missed just after the answer was written",
    )
    redis_tls_check_hostname: bool = Field(
        default=False, description="Memorystore certs name no host; the CA is always verified"
    )
    redis_timeout_ms: float = Field(default=50.0, gt=0, description="per-command timeout")
    redis_breaker_failures: int = Field(
        default=5, ge=1, description="failures that open the breaker"
    )
    redis_breaker_reset_seconds: float = Field(default=1.0, gt=0, description="breaker cool-down")

    # Cache semantics.
    cache_enabled: bool = Field(default=True, description="off: every request runs the model")
    cache_namespace: str = Field(default="", description="service identity in keys (ns/name)")
    cache_ttl_seconds: int = Field(default=3600, ge=1, description="how long an answer is kept")
    cache_lock_enabled: bool = Field(default=True, description="single-flight across replicas")
    cache_lock_ttl_ms: int = Field(
        default=2000, ge=1, description="the cross-replica lock expires after this"
    )
    cache_lock_min_model_ms: float = Field(
        default=1.0,
        ge=0,
        description="take the lock only for models slower than this per request; 0 = always",
    )
    cache_max_value_bytes: int = Field(
        default=1024 * 1024,
        ge=0,
        description="answers larger than this are served, not cached; 0 = no cap",
    )
    cache_stats_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how often the cache counts go to Redis (the operator's hit ratio); 0 = never",
    )
    cache_stats_namespace: str = Field(
        default="",
        description="whose counts they are (default: the cache namespace); a canary's pods "
        "count apart (ns/name-canary) while sharing the cache namespace",
    )
    l1_max_bytes: int = Field(default=0, ge=0, description="in-process L1 size; 0 = off")
    l1_ttl_seconds: float = Field(default=1.0, gt=0, description="how long the L1 keeps an answer")

    # Dynamic batching of cache misses.
    batch_max_size: int = Field(default=32, ge=1, description="1 = no batching")
    batch_max_wait_ms: float = Field(
        default=1.0, ge=0, description="how long a miss waits for others to batch with"
    )

    termination_log: Path | None = Field(
        default=None,
        description="a fatal start-up error is written here in one line (Kubernetes: "
        "/dev/termination-log, shown in the pod's status and the InferenceService's ModelReady)",
    )

    # Logging.
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = Field(
        default=LogFormat.JSON, description="json (Cloud Logging) or text"
    )

    @field_validator("upstream_url")
    @classmethod
    def _upstream_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("upstream_url must start with http:// or https://")
        return value.rstrip("/") if value else None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("redis_url must start with redis:// or rediss://")
        return value or None

    @model_validator(mode="after")
    def _model_or_upstream(self) -> ServingSettings:
        if self.upstream_url is None and (not self.model_uri or self.model_format is None):
            raise ValueError("model_uri and model_format are required (or an upstream_url)")
        return self

    @model_validator(mode="after")
    def _grpc_tls_files(self) -> ServingSettings:
        tls = self.grpc_tls_port is not None
        files = self.grpc_tls_cert_file is not None and self.grpc_tls_key_file is not None
        if tls and not files:
            raise ValueError("grpc_tls_port needs grpc_tls_cert_file and grpc_tls_key_file")
        return self

    @property
    def cache_key_namespace(self) -> str:
        return self.cache_namespace or self.model_name

    @property
    def stats_namespace(self) -> str:
        return self.cache_stats_namespace or self.cache_key_namespace

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> ServingSettings:
        """Settings from an environment mapping; ``overrides`` (e.g. CLI flags) win."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = env_var(name)
            if key in environ:
                values[name] = environ[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    def to_env(self, *, exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
        """The environment variables that reproduce these settings (unset fields omitted)."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            if name in exclude:
                continue
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[env_var(name)] = str(value)
        return env


def env_var(field: str) -> str:
    """The environment variable of a :class:`ServingSettings` field."""
    if field not in ServingSettings.model_fields:
        raise KeyError(f"ServingSettings has no field {field!r}")
    return ENV_PREFIX + field.upper()
