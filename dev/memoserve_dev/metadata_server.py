"""A local stand-in for the GCE / GKE metadata server: what google-auth's Application Default
Credentials use of it, so that the real ``google.auth.default()`` finds it and gets tokens.

Point google-auth at it with ``GCE_METADATA_HOST=HOST:PORT`` (metadata and token requests;
google-auth reads it once, when ``google.auth.compute_engine._metadata`` is first imported) and
``GCE_METADATA_IP=HOST:PORT`` (its "is this Google Cloud?" ping, read at every ping):
:meth:`MetadataServer.environ`. Like the real one it answers only requests that carry
``Metadata-Flavor: Google`` (403 otherwise) and marks its answers with that header.

Tests drive it from their own thread: :meth:`~MetadataServer.set_token` (rotation),
:meth:`~MetadataServer.fail_tokens` (e.g. a pod whose Kubernetes service account is bound to no
Google service account), ``gce = False`` (not on Google Cloud at all: google-auth then finds no
credentials). ``python -m memoserve_dev.metadata_server --port 8089`` runs one by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Handler

FLAVOR = "Metadata-Flavor"
GOOGLE = "Google"
ROOT = "/computeMetadata/v1"
DEFAULT_EMAIL = "memoserve@memoserve-dev.iam.gserviceaccount.com"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


@dataclass
class _State:
    """What the server answers; changed by tests from another thread (under the lock)."""

    token: str
    expires_in: int
    gce: bool = True  # False: answer like a host that is no metadata server
    failure: tuple[int, str] | None = None  # (HTTP status, body) for token requests
    tokens_served: list[str] = field(default_factory=list)


class MetadataServer:
    """One metadata server on ``host``, in a thread of its own; ``with`` starts and stops it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        project: str = "memoserve-dev",
        email: str = DEFAULT_EMAIL,
        token: str = "ya29.first-token",
        expires_in: int = 3599,
    ) -> None:
        self.host, self.project, self.email = host, project, email
        self.port = 0
        self._lock = threading.Lock()
        self._state = _State(token, expires_in)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- control (any thread) -----------------------------------------------------------------

    def reset(self, token: str = "ya29.first-token", expires_in: int = 3599) -> None:
        """Back to handing out ``token``, on Google Cloud, nothing served yet."""
        with self._lock:
            self._state = _State(token, expires_in)

    def set_token(self, token: str, expires_in: int = 3599) -> None:
        """Hand out ``token`` from now on (valid for ``expires_in`` seconds, as it says)."""
        with self._lock:
            self._state.token, self._state.expires_in = token, expires_in

    def fail_tokens(self, status: int | None, body: str = "") -> None:
        """Answer token requests with ``status`` and ``body`` (None: hand out tokens again)."""
        with self._lock:
            self._state.failure = None if status is None else (status, body)

    @property
    def gce(self) -> bool:
        with self._lock:
            return self._state.gce

    @gce.setter
    def gce(self, value: bool) -> None:
        with self._lock:
            self._state.gce = value

    @property
    def tokens_served(self) -> list[str]:
        """Every token handed out so far, in order."""
        with self._lock:
            return list(self._state.tokens_served)

    def environ(self) -> dict[str, str]:
        """The environment variables that send google-auth here."""
        address = f"{self.host}:{self.port}"
        return {"GCE_METADATA_HOST": address, "GCE_METADATA_IP": address}

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (on a port of its own choosing unless ``port`` was set) and serve."""
        sock = socket.socket()
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(sock, started), name="metadata-server", daemon=True
        )
        self._thread.start()
        started.wait()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()

    def __enter__(self) -> MetadataServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, sock: socket.socket, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(self._app(), access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock).start())
        self._loop = loop
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    # -- the HTTP side ------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._metadata_only])
        account = ROOT + "/instance/service-accounts/{account}"
        app.router.add_get("/", self._ping)
        app.router.add_get(ROOT + "/project/project-id", self._project)
        app.router.add_get(ROOT + "/universe/universe-domain", self._universe)
        app.router.add_get(account + "/", self._account_info)
        app.router.add_get(account + "/email", self._email)
        app.router.add_get(account + "/token", self._token)
        return app

    @web.middleware
    async def _metadata_only(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.gce:
            return web.Response(status=404, text="not a metadata server")
        if request.headers.get(FLAVOR) != GOOGLE:
            return web.Response(status=403, text=f"Missing required header: {FLAVOR}: {GOOGLE}")
        response = await handler(request)
        response.headers[FLAVOR] = GOOGLE
        return response

    def _known(self, request: web.Request) -> None:
        if request.match_info["account"] not in ("default", self.email):
            raise web.HTTPNotFound(text="no such service account")

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="computeMetadata/\n")

    async def _project(self, request: web.Request) -> web.Response:
        return web.Response(text=self.project)

    async def _universe(self, request: web.Request) -> web.Response:
        return web.Response(text="googleapis.com")

    async def _account_info(self, request: web.Request) -> web.Response:
        self._known(request)
        return web.json_response(
            {"aliases": ["default"], "email": self.email, "scopes": list(SCOPES)}
        )

    async def _email(self, request: web.Request) -> web.Response:
        self._known(request)
        return web.Response(text=self.email)

    async def _token(self, request: web.Request) -> web.Response:
        self._known(request)
        with self._lock:
            state = self._state
            if state.failure is not None:
                status, body = state.failure
                return web.Response(status=status, text=body)
            state.tokens_served.append(state.token)
            token, expires_in = state.token, state.expires_in
        return web.json_response(
            {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="A local GCE metadata server for google-auth.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="ya29.first-token")
    arguments = parser.parse_args()
    server = MetadataServer(host=arguments.host, token=arguments.token)
    server.port = arguments.port
    server.start()
    print(" ".join(f"{name}={value}" for name, value in server.environ().items()), flush=True)
    threading.Event().wait()  # until interrupted


if __name__ == "__main__":
    main()
