"""The ``memoserve`` command. Subcommands import what they need when they run, not before."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from memoserve_cli.settings_options import with_settings_options
from memoserve_contract.settings import ServingSettings, env_var

app = typer.Typer(
    help="memoserve: ML models on GKE, every answer cached in Redis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dev_app = typer.Typer(help="Tools for local development and tests.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")

# Each image installs the packages of its own commands only: the serving image has no
# operator, the operator image no model server, neither the development tools.
EXTRA_OF_PACKAGE = {
    "memoserve_serving": "serving",
    "memoserve_operator": "operator",
    "memoserve_dev": "operator,sample",
}


def _require(command: str, *packages: str) -> None:
    """One line and exit 1 when ``command`` runs where its packages are not installed."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        extras = ",".join(EXTRA_OF_PACKAGE[name] for name in missing)
        typer.echo(
            f"error: memoserve {command} needs {' and '.join(missing)}, which this installation "
            f"does not have (a source install with the extras [{extras}] does)",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
@with_settings_options(ServingSettings, env_var)
def serve(**overrides: Any) -> None:
    """Serve one model over KServe v2 REST, answers cached in Redis.

    Every setting can come from its MEMOSERVE_* environment variable (see the README's
    configuration table); flags win over the environment.
    """
    _require("serve", "memoserve_serving")
    from pydantic import ValidationError

    try:
        settings = ServingSettings.from_env(os.environ, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{env_var(str(err['loc'][0]))}: {err['msg']}" if err["loc"] else err["msg"]
            for err in exc.errors()
        )
        raise typer.BadParameter(problems) from None
    # One server in this process, or several worker processes each running one.
    if settings.workers > 1:
        from memoserve_serving.http.workers import run_workers

        raise SystemExit(run_workers(settings))
    from memoserve_serving.http.server import run_server

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
    _require("render", "memoserve_operator")
    from memoserve_operator.render import RenderError, render
    from memoserve_operator.settings import OperatorSettings, SettingsError

    try:
        output = render(file, OperatorSettings.from_env(os.environ), namespace=namespace)
    except (RenderError, SettingsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(output, nl=False)


@app.command("run")
def run_command(
    file: Annotated[
        Path,
        typer.Option("--file", "-f", help="InferenceService YAML, the one kubectl would apply"),
    ],
    port: Annotated[int, typer.Option(help="listen port; 0 = any free port")] = 8080,
    grpc_port: Annotated[
        int, typer.Option(help="gRPC port when spec.grpc.enabled; 0 = any free port")
    ] = 8081,
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    upstream: Annotated[
        str | None,
        typer.Option(
            help="be the cache front of this v2 server (http://HOST:PORT) instead of loading "
            "the spec's model"
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(help="cache in this Redis (redis:// or rediss://) instead of the spec's"),
    ] = None,
    redis_password: Annotated[
        str | None,
        typer.Option(
            envvar=env_var("redis_password"),
            help="Redis AUTH string: a Secret the spec names cannot be read locally",
        ),
    ] = None,
    redis_ca_file: Annotated[
        Path | None,
        typer.Option(envvar=env_var("redis_ca_file"), help="server CA for a rediss:// Redis"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="server log level, on stderr")] = "warning",
) -> None:
    """Run the InferenceService in FILE on this machine until Ctrl-C, as its pods would.

    Cache: --redis-url, spec.cache.external, else a redis-server started for the run, else
    in-process. Bad input: one line on stderr, exit 1. See the README's "Try it".
    """
    _require("run", "memoserve_serving", "memoserve_operator", "memoserve_dev")
    from memoserve_cli.run import RunError
    from memoserve_cli.run.runner import RunOptions, run
    from memoserve_operator.render import RenderError

    options = RunOptions(
        file=file,
        host=host,
        port=port,
        grpc_port=grpc_port,
        upstream=upstream,
        redis_url=redis_url,
        redis_password=redis_password,
        redis_ca_file=redis_ca_file,
        log_level=log_level,
    )
    try:
        run(options)
    except (RunError, RenderError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM outside the server's own handling: all stopped by now
    typer.echo("stopped")


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
    _require("operator", "memoserve_operator")
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
    out: Annotated[
        Path,
        typer.Option(help="where to write them (the quickstart example serves iris.onnx there)"),
    ] = Path("/tmp/memoserve-models"),
) -> None:
    """Train small models on datasets scikit-learn ships (iris) and write them as ONNX,
    scikit-learn and XGBoost files."""
    _require("dev sample-model", "memoserve_dev")
    from memoserve_dev.sample_models import write_sample_models

    for path in write_sample_models(out):
        typer.echo(str(path))


@dev_app.command("memorystore-emulator")
def memorystore_emulator(
    port: Annotated[int, typer.Option(help="REST port (0: a free one)")],
    grpc_port: Annotated[
        int | None, typer.Option(help="gRPC port, the operator's transport; default PORT+1")
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on and to give instances")] = (
        "127.0.0.1"
    ),
    data_dir: Annotated[
        Path | None,
        typer.Option(help="keep instances (not their data) here across restarts; default: temp"),
    ] = None,
    ready_delay: Annotated[float, typer.Option(help="seconds from CREATING to READY")] = 2.0,
    operation_delay: Annotated[
        float, typer.Option(help="seconds an update, upgrade or delete takes")
    ] = 1.0,
    fail_next_create: Annotated[
        str | None,
        typer.Option(help="gRPC code the next CreateInstance fails with, e.g. PERMISSION_DENIED"),
    ] = None,
    fail_next_operation: Annotated[
        str | None,
        typer.Option(help="VERB=CODE: the next create/update/upgrade/delete operation ends so"),
    ] = None,
    service_connection_policy: Annotated[
        list[str] | None,
        typer.Option(
            help="NETWORK:SERVICE_CLASS:REGION, e.g. default:gcp-memorystore:us-central1 "
            "(repeatable): a policy Valkey / Redis Cluster creates need without "
            "--allow-any-network"
        ),
    ] = None,
    allow_any_network: Annotated[
        bool,
        typer.Option(help="every network has every service connection policy"),
    ] = True,
) -> None:
    """A local Memorystore API: Redis v1 (REST and gRPC), Valkey v1 and Redis Cluster v1 (gRPC,
    same port), backed by real redis-server processes and Redis Clusters. Point the operator
    at it with MEMOSERVE_OPERATOR_MEMORYSTORE_ENDPOINT."""
    _require("dev memorystore-emulator", "memoserve_dev")
    import asyncio

    from memoserve_dev.memorystore_emulator.faults import Faults
    from memoserve_dev.memorystore_emulator.psc import ServiceConnectionPolicies
    from memoserve_dev.memorystore_emulator.server import Emulator, serve

    faults = Faults(ready_delay=ready_delay, operation_delay=operation_delay)
    policies = ServiceConnectionPolicies(allow_any_network=allow_any_network)
    try:
        for spec in service_connection_policy or []:
            policies.declare_spec(spec)
        if fail_next_create:
            faults.fail_next("CreateInstance", fail_next_create.upper())
        if fail_next_operation:
            verb, _, code = fail_next_operation.partition("=")
            faults.fail_next_operation(verb.lower(), code.upper() or "INTERNAL")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    emulator = Emulator(
        host=host,
        port=port,
        grpc_port=grpc_port or 0,
        data_dir=data_dir,
        faults=faults,
        policies=policies,
    )
    try:
        asyncio.run(serve(emulator, announce=typer.echo))
    except (RuntimeError, OSError) as exc:  # redis-server missing, port taken
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    app()
