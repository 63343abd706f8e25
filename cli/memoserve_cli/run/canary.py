"""``memoserve run -f`` of a service with spec.canary: both versions on this machine, split by the
percentage.

Each version is a ``memoserve serve`` process of its own with its pods' settings (``pod_env`` of
the service and of ``canary_service``: one cache namespace, each model's digest in its keys), on
a free loopback port; the run itself listens on --port as a small HTTP proxy that sends
canary.trafficPercent of the requests to the canary and the rest to the stable version, as the
HTTPRoute's weights do on GKE. Every answer says which version gave it (X-Memoserve-Version).
The split is exact rather than random: of any 100 requests in a row, trafficPercent go to the
canary, spread evenly. gRPC is off in such a run (the proxy speaks HTTP/1.1 only).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from memoserve_contract.canary import canary_service
from memoserve_contract.settings import ServingSettings, env_var
from memoserve_serving.upstream.http1 import Http1Pool

if TYPE_CHECKING:
    from memoserve_cli.run.cache import CachePlan
    from memoserve_contract.resource.inferenceservice import InferenceService

VERSION_HEADER = "x-memoserve-version"
# Request headers the versions read (content negotiation, the binary tensor extension, cache
# control); everything else is the proxy's business (Host, Connection, ...).
FORWARDED = (b"content-type", b"accept", b"inference-header-content-length")
# Response headers the proxy sets itself.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})
# A laptop's model run may be slow (a first call loads it); past this the proxy answers 502.
PROXY_TIMEOUT_SECONDS = 120.0


class Split:
    """Which version answers the n-th request: exactly ``percent`` of every 100 in a row."""

    def __init__(self, percent: int) -> None:
        self.percent = percent
        self._count = 0

    def canary_next(self) -> bool:
        n = self._count
        self._count += 1
        return (n + 1) * self.percent // 100 > n * self.percent // 100


def version_env(isvc: InferenceService, plan: CachePlan, log_level: str) -> dict[str, str]:
    """A version's pod settings as ``memoserve serve`` reads them, with the run's overrides."""
    from memoserve_cli.run.spec import local_settings

    settings = local_settings(isvc, plan, host="127.0.0.1", port=0, log_level=log_level)
    unset = set(ServingSettings.model_fields) - settings.model_fields_set
    env = settings.to_env(exclude=unset)
    env[env_var("grpc_enabled")] = "false"
    if plan.in_process:  # an in-process LRU cannot be shared by two processes
        env[env_var("cache_enabled")] = "false"
    return env


def start_versions(
    isvc: InferenceService,
    plan: CachePlan,
    stack: contextlib.ExitStack,
    workdir: Path,
    log_level: str,
) -> tuple[str, str]:
    """The stable and the canary version's URLs, once both are ready."""
    from memoserve_cli.run.model_tier import start_serve
    from memoserve_cli.run.spec import download_dir

    canary = canary_service(isvc)
    assert canary is not None
    urls = []
    for version, label in ((isvc, "stable"), (canary, "canary")):
        env = version_env(version, plan, log_level)
        what = f"the {label} version ({version.spec.model.uri})"
        urls.append(start_serve(env, stack, workdir, download_dir(), what=what, log=label))
    return urls[0], urls[1]


def proxy_app(stable: str, canary: str, split: Split) -> Starlette:
    """The run's front door: each request to one version, by ``split``."""
    pools: dict[str, Http1Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        pools["stable"] = Http1Pool(stable, limit=16)
        pools["canary"] = Http1Pool(canary, limit=16)
        yield
        for pool in pools.values():
            await pool.close()

    async def forward(request: Request) -> Response:
        version = "canary" if split.canary_next() else "stable"
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        wanted = tuple(
            (name, value) for name, value in request.headers.raw if name.lower() in FORWARDED
        )
        try:
            answer = await pools[version].request(
                request.method.encode(),
                path.encode(),
                await request.body(),
                wanted,
                timeout=PROXY_TIMEOUT_SECONDS,
            )
        except OSError as exc:  # ConnectionError, TimeoutError: the version did not answer
            return Response(f"the {version} version did not answer: {exc}\n", status_code=502)
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in answer.headers.items()
            if name not in HOP_BY_HOP
        }
        headers[VERSION_HEADER] = version
        return Response(answer.body, status_code=answer.status, headers=headers)

    methods = ["GET", "POST", "HEAD"]
    routes = [Route("/{path:path}", forward, methods=methods)]
    return Starlette(routes=routes, lifespan=lifespan)


class _ProxyServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[int], None]) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the port picked for port 0 too
            self.on_started(self.servers[0].sockets[0].getsockname()[1])


def serve_proxy(app: Starlette, host: str, port: int, on_started: Callable[[int], None]) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; ``on_started`` with the port once it listens."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    _ProxyServer(config, on_started).run()
