"""spec.model: what to serve, by the built-in runtime or a v2 server's container."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from memoserve_contract.resource.fields import SpecModel, rules
from memoserve_contract.settings import ModelFormat

V2_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a path segment of /v2/models/{name}


ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"  # what a container's env[].name may be


class EnvVarSpec(SpecModel):
    """One environment variable of model.server's container (plain values only)."""

    name: str = Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)
    value: str = Field(default="", max_length=32768)


class ModelServerSpec(SpecModel):
    """Any Open Inference Protocol (v2) REST server as the model tier (Triton, MLServer, a KServe
    runtime), behind the cache front: its container, as the model Deployment runs it."""

    image: str = Field(min_length=1, max_length=512, description="the server's image")
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=64, description="the container's command (default: the image's)"
    )
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=256, description="the container's args"
    )
    port: int = Field(default=8080, ge=1, le=65535, description="its v2 REST port")
    readiness_path: str = Field(
        default="/v2/health/ready",
        max_length=1024,
        pattern=r"^/",
        description="HTTP GET path that answers 200 once the model is loaded",
    )
    model_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=V2_NAME_PATTERN,
        description="the model's v2 name in that server (default: spec.model.name or "
        "metadata.name)",
    )
    env: list[EnvVarSpec] = Field(default_factory=list, max_length=64)


class ModelSpec(SpecModel):
    """The model to serve."""

    model_config = ConfigDict(
        json_schema_extra=rules(
            (
                r"self.uri.matches('^(gs://[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9](/.*)?|/.+)$')",
                "spec.model.uri must be gs://BUCKET[/PATH] or an absolute local path (starting "
                "with /)",
                ".uri",
            ),
            (
                "has(self.format) || has(self.server)",
                "spec.model.format (onnx, sklearn or xgboost) is required unless "
                "spec.model.server is given",
                ".format",
            ),
            (
                "!has(self.format) || !has(self.server)",
                "spec.model.format names the built-in runtime: omit it with spec.model.server",
                ".format",
            ),
        )
    )

    uri: str = Field(
        min_length=1,
        max_length=1024,
        description="gs://bucket/prefix (or a file), or an absolute path inside the image",
    )
    format: ModelFormat | None = Field(
        default=None, description="onnx, sklearn or xgboost: the built-in runtime"
    )
    name: str | None = Field(
        default=None,
        max_length=63,
        pattern=V2_NAME_PATTERN,
        description="v2 model name (/v2/models/{name}); defaults to metadata.name",
    )
    version: str | None = Field(
        default=None, max_length=63, pattern=V2_NAME_PATTERN, description="v2 model version"
    )
    server: ModelServerSpec | None = Field(
        default=None,
        description="a v2 server's container as the model tier instead of the built-in runtime "
        "(needs front.enabled)",
    )
