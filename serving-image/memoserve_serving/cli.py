"""The ``memoserve`` command. Subcommands import what they need when they run, not before."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from memoserve_serving.settings import ModelFormat, env_var

app = typer.Typer(
    help="memoserve: ML models on GKE, every answer cached in Redis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dev_app = typer.Typer(help="Tools for local development and tests.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")


def _env_help(field: str, text: str) -> str:
    return f"{text} [env: {env_var(field)}]"


@app.command()
def serve(
    model_name: Annotated[
        str | None, typer.Option(help=_env_help("model_name", "v2 model name"))
    ] = None,
    model_uri: Annotated[
        str | None, typer.Option(help=_env_help("model_uri", "gs://bucket/prefix or a local path"))
    ] = None,
    model_format: Annotated[
        ModelFormat | None, typer.Option(help=_env_help("model_format", "model format"))
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(help=_env_help("redis_url", "redis:// or rediss://; unset = no cache")),
    ] = None,
    redis_password: Annotated[
        str | None,
        typer.Option(help=_env_help("redis_password", "Redis AUTH string (prefer the env var)")),
    ] = None,
    redis_ca_file: Annotated[
        Path | None, typer.Option(help=_env_help("redis_ca_file", "server CA for rediss://"))
    ] = None,
    host: Annotated[str | None, typer.Option(help=_env_help("host", "listen address"))] = None,
    port: Annotated[int | None, typer.Option(help=_env_help("port", "listen port"))] = None,
) -> None:
    """Serve one model over KServe v2 REST, answers cached in Redis.

    Every setting can come from its MEMOSERVE_* environment variable (see the README's
    configuration table); flags win over the environment.
    """
    from pydantic import ValidationError

    from memoserve_serving.server import run_server
    from memoserve_serving.settings import ServingSettings

    try:
        settings = ServingSettings.from_env(
            os.environ,
            model_name=model_name,
            model_uri=model_uri,
            model_format=model_format,
            redis_url=redis_url,
            redis_password=redis_password,
            redis_ca_file=redis_ca_file,
            host=host,
            port=port,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{env_var(str(err['loc'][0]))}: {err['msg']}" if err["loc"] else err["msg"]
            for err in exc.errors()
        )
        raise typer.BadParameter(problems) from None
    run_server(settings)


@app.command("render")
def render_command(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="YAML file with one or more InferenceServices")
    ],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="namespace of resources that name none")
    ] = "default",
) -> None:
    """Print every object the operator would apply for the InferenceServices in FILE, as
    multi-document YAML, without a cluster. Invalid input: one line on stderr, exit 1.

    Operator settings (e.g. the default image) come from MEMOSERVE_OPERATOR_* variables.
    """
    from memoserve_operator.render import RenderError, render
    from memoserve_operator.settings import OperatorSettings, SettingsError

    try:
        output = render(file, OperatorSettings.from_env(os.environ), namespace=namespace)
    except (RenderError, SettingsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(output, nl=False)


@app.command("operator")
def operator_command(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="watch only this namespace (repeatable); default: "
            "MEMOSERVE_OPERATOR_NAMESPACES, empty = every namespace",
        ),
    ] = None,
) -> None:
    """Run the memoserve operator (kopf): InferenceService -> Deployment, Service, Ingress,
    HPA, ... and status. Settings come from MEMOSERVE_OPERATOR_* variables."""
    from memoserve_operator.main import run_operator
    from memoserve_operator.settings import OperatorSettings, SettingsError

    try:
        settings = OperatorSettings.from_env(
            os.environ, namespaces=tuple(namespace) if namespace else None
        )
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    run_operator(settings)


@dev_app.command("sample-model")
def sample_model(
    out: Annotated[Path, typer.Option(help="directory to write the sample models to")] = Path(
        ".local/models"
    ),
) -> None:
    """Train small models on datasets scikit-learn ships (iris) and write them as ONNX,
    scikit-learn and XGBoost files."""
    from memoserve_serving.sample import write_sample_models

    for path in write_sample_models(out):
        typer.echo(str(path))


def main() -> None:
    app()
