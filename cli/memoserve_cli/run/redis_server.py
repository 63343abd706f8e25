"""A throwaway redis-server for one local run: a free loopback port, a temporary directory, no
persistence, evicting like a cache; stopped (and waited for) when the run ends."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from memoserve_cli.run import RunError

START_SECONDS = 5.0
STOP_SECONDS = 5.0
ATTEMPTS = 3  # a free port may be taken between choosing it and redis-server binding it
MAX_MEMORY = "256mb"


@dataclass(frozen=True)
class LocalRedis:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it takes longer than STOP_SECONDS; always reaped."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def local_redis_server(binary: str, workdir: Path) -> Iterator[LocalRedis]:
    """Start ``binary`` (a redis-server) in ``workdir``; RunError if it does not come up."""
    workdir.mkdir(parents=True, exist_ok=True)
    problem = "did not start"
    for _ in range(ATTEMPTS):
        server = _spawn(binary, workdir, _free_port())
        try:
            problem = _wait_listening(server, workdir / "redis.log")
        except BaseException:  # e.g. Ctrl-C while waiting: leave nothing running
            server.stop()
            raise
        if not problem:
            break
        server.stop()
    else:
        raise RunError(f"redis-server {problem}")
    try:
        yield server
    finally:
        server.stop()


def _spawn(binary: str, workdir: Path, port: int) -> LocalRedis:
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--logfile",
        str(workdir / "redis.log"),
        "--daemonize",
        "no",
        # A cache, as Memorystore is configured for memoserve: evict, never refuse a write.
        "--maxmemory",
        MAX_MEMORY,
        "--maxmemory-policy",
        "allkeys-lru",
    ]
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return LocalRedis(process, port)


def _wait_listening(server: LocalRedis, log_file: Path) -> str:
    """ "" once ``server`` accepts connections, else what went wrong."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return f"exited at start: {_last_line(log_file)}"
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                return ""
        except OSError:
            time.sleep(0.02)
    return f"did not listen on 127.0.0.1:{server.port} within {START_SECONDS:g} s"


def _last_line(log_file: Path) -> str:
    try:
        lines = log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no log"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
