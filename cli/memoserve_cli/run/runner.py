"""``memoserve run``: validate, pick the cache, load the model, serve until Ctrl-C or SIGTERM.

Everything started here (a redis-server, a temporary directory) is stopped on the way out,
whatever the way out is: a bad input, a failed load, a signal during a download or after.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memoserve_cli.run import RunError

if TYPE_CHECKING:
    from memoserve_cli.run.cache import CachePlan
    from memoserve_contract.resource.inferenceservice import InferenceService
    from memoserve_contract.resource.model import ModelSpec
    from memoserve_serving.protocol.metadata import ModelMetadata
    from memoserve_serving.storage import Progress

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class RunOptions:
    file: Path
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int = 8081
    upstream: str | None = None  # a v2 server to be the cache front of (no model loaded here)
    redis_url: str | None = None
    redis_password: str | None = None
    redis_ca_file: Path | None = None
    log_level: str = "WARNING"


def say(text: str) -> None:
    print(text, flush=True)


def notice(text: str) -> None:
    say(f"note: {text}")


def run(options: RunOptions) -> None:
    """Serve the InferenceService in ``options.file`` until SIGINT or SIGTERM.

    Bad input raises RunError or RenderError (one-line messages); a signal outside the
    server's own handling (before it runs, or a second one) raises KeyboardInterrupt. Either
    way, nothing is left running.
    """
    from memoserve_cli.run.spec import load_service, spec_notices
    from memoserve_contract.logs import configure_logging
    from memoserve_contract.settings import LogFormat

    try:
        configure_logging(options.log_level.upper(), LogFormat.TEXT)
    except ValueError as exc:  # an unknown level name
        raise RunError(f"--log-level: {exc}") from None
    isvc = load_service(options.file)
    if isvc.spec.model.server is not None and options.upstream is None:
        raise RunError(
            f"{options.file}: spec.model.server ({isvc.spec.model.server.image}) is a container "
            "for GKE: run it yourself and pass --upstream http://HOST:PORT (docs/front.md)"
        )
    for line in spec_notices(isvc):
        notice(line)
    _check_port(options.host, options.port)
    if isvc.spec.grpc_enabled:
        _check_port(options.host, options.grpc_port, "--grpc-port")
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in _STOP_SIGNALS}
    stack = contextlib.ExitStack()
    try:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="memoserve-run-")))
        _serve(isvc, options, stack, workdir)
    finally:
        for sig in _STOP_SIGNALS:  # let the clean-up finish, even on a second Ctrl-C
            signal.signal(sig, signal.SIG_IGN)
        stack.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(
    isvc: InferenceService, options: RunOptions, stack: contextlib.ExitStack, workdir: Path
) -> None:
    from memoserve_cli.run.cache import in_process_cache, plan_cache
    from memoserve_cli.run.spec import local_settings
    from memoserve_serving.http.server import build_server
    from memoserve_serving.lifespan import load_served_model
    from memoserve_serving.storage import ModelLoadError

    plan = plan_cache(
        isvc,
        redis_url=options.redis_url,
        redis_password=options.redis_password,
        redis_ca_file=options.redis_ca_file,
        stack=stack,
        workdir=workdir,
        notice=notice,
    )
    if isvc.spec.canary is not None:
        _serve_canary(isvc, options, plan, stack, workdir)
        return
    upstream = None
    given = options.upstream
    if given is None and isvc.spec.split:  # the built-in runtime as the model tier
        from memoserve_cli.run.model_tier import start_model_tier
        from memoserve_cli.run.spec import download_dir

        notice(f"starting the model tier ({isvc.name}-model) as a process of its own")
        given = start_model_tier(isvc, stack, workdir, download_dir())
    if given is not None:
        from memoserve_cli.run.upstream import identity, read_upstream

        container = isvc.spec.model.server
        name = (container.model_name if container is not None else None) or isvc.model_name
        upstream = read_upstream(given, name)
    settings = local_settings(
        isvc,
        plan,
        host=options.host,
        port=options.port,
        grpc_port=options.grpc_port,
        log_level=options.log_level,
        upstream_url=upstream.url if upstream else None,
        model_identity=identity(upstream.url) if upstream else "",
    )
    served = None
    if upstream is None:
        try:
            with _download_progress(settings.model_uri) as progress:
                served = load_served_model(settings, progress)
        except ModelLoadError as exc:
            raise RunError(f"{options.file}: {exc}") from None
        model = Loaded(
            served.name,
            f"{settings.model_format}, {settings.model_uri}",
            served.digest,
            served.model.metadata,
        )
    else:
        model = Loaded(
            isvc.model_name, f"cache front of {upstream.url}", upstream.digest, upstream.metadata
        )

    def started(port: int) -> None:
        grpc_port = server.state.grpc_port  # bound by then (the app's lifespan), when it is on
        say(_banner(isvc, options, model, plan, (port, grpc_port), workdir))

    server = build_server(
        settings,
        served,
        cache_factory=in_process_cache if plan.in_process else None,
        on_started=started,
    )
    server.run()  # until the first SIGINT/SIGTERM (a second one raises KeyboardInterrupt)


def _serve_canary(
    isvc: InferenceService,
    options: RunOptions,
    plan: CachePlan,
    stack: contextlib.ExitStack,
    workdir: Path,
) -> None:
    """Both versions as processes of their own, this run the proxy that splits between them
    (run/canary.py)."""
    from memoserve_cli.run.canary import Split, proxy_app, serve_proxy, start_versions
    from memoserve_cli.run.upstream import read_upstream

    canary = isvc.spec.canary
    assert canary is not None
    percent = canary.traffic_percent
    notice(
        f"spec.canary: the stable and the canary version run as processes of their own; this "
        f"run sends {100 - percent}% of the requests to the stable, {percent}% to the canary"
    )
    if isvc.spec.grpc_enabled:
        notice("gRPC is off in a canary run: the local proxy speaks HTTP/1.1 only")
    if plan.in_process:
        notice("no Redis for both versions to share: the cache is off (give --redis-url)")
        plan = dataclasses.replace(plan, enabled=False, description="off (no shared Redis)")
    stable_url, canary_url = start_versions(isvc, plan, stack, workdir, options.log_level)
    stable = read_upstream(stable_url, isvc.model_name)
    model = Loaded(isvc.model_name, _described(isvc.spec.model), "", stable.metadata)
    share = f"{percent}% of requests ({_described(canary.model)}); the stable {100 - percent}%"

    def started(port: int) -> None:
        say(_banner(isvc, options, model, plan, (port, None), workdir, canary=share))

    app = proxy_app(stable_url, canary_url, Split(percent))
    serve_proxy(app, options.host, options.port, started)


def _described(model: ModelSpec) -> str:
    version = f" version {model.version}" if model.version else ""
    return f"{model.format}, {model.uri}{version}"


@dataclass(frozen=True)
class Loaded:
    """What the banner says of the model: served here, or by the upstream."""

    name: str
    where: str  # "onnx, /path" or "cache front of URL"
    digest: str
    metadata: ModelMetadata


def _banner(
    isvc: InferenceService,
    options: RunOptions,
    model: Loaded,
    plan: CachePlan,
    ports: tuple[int, int | None],
    workdir: Path,
    canary: str | None = None,
) -> str:
    from memoserve_cli.run.banner import (
        MAX_INLINE_CHARS,
        RunSummary,
        banner,
        curl_command,
        example_request,
        grpc_request,
        grpcurl_command,
    )

    port, grpc_port = ports
    host = "127.0.0.1" if options.host in ("0.0.0.0", "") else options.host
    address = f"[{host}]" if ":" in host else host
    url = f"http://{address}:{port}"
    body = example_request(model.metadata)
    body_file = None
    if len(body) > MAX_INLINE_CHARS:
        body_file = workdir / "request.json"
        body_file.write_text(body)
    summary = RunSummary(
        service=f"{isvc.namespace}/{isvc.name}",
        file=str(options.file),
        model=model.name,
        where=model.where,
        digest=model.digest,
        cache=plan.description,
        url=url,
        cache_enabled=plan.enabled,
        grpc_target=f"{address}:{grpc_port}" if grpc_port is not None else None,
        canary=canary,
    )
    infer_url = f"{url}/v2/models/{model.name}/infer"
    if not model.metadata.inputs:  # MLServer lists none unless its model settings do
        return banner(summary, f"(the model lists no inputs: POST your request to {infer_url})")
    curl = curl_command(infer_url, body, str(body_file) if body_file else None)
    request = grpc_request(model.name, body) if summary.grpc_target else None
    grpcurl = None
    if summary.grpc_target is not None and request is not None and body_file is None:
        grpcurl = grpcurl_command(summary.grpc_target, request)
    return banner(summary, curl, grpcurl)


@contextlib.contextmanager
def _download_progress(uri: str) -> Iterator[Progress | None]:
    """A progress bar (on stderr) for a gs:// download; nothing for a local path."""
    if not uri.startswith("gs://"):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TransferSpeedColumn
    from rich.progress import Progress as ProgressBar

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with ProgressBar(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"downloading {uri}", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _check_port(host: str, port: int, option: str = "--port") -> None:
    """RunError now, rather than a server that fails after the model has loaded."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or exc
            raise RunError(f"{option}: cannot listen on {host}:{port}: {reason}") from None
