"""Processes the bench starts: pinned to a CPU, in their own session, always stopped.

Every process goes in a :class:`Procs` registry, which stops them all on exit and keeps a pid
file that ``run.sh`` reads in its EXIT trap, in case this Python process dies first.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from memoserve_dev.redis_server import RedisServer


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.popen.pid, sig)  # its own session: the group is ours alone
            except ProcessLookupError:
                return
            try:
                self.popen.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


class Procs:
    """Starts processes pinned with taskset and stops every one of them on exit."""

    def __init__(self, workdir: Path, pidfile: Path | None) -> None:
        self.workdir = workdir
        self.pidfile = pidfile
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        cpu: int | str,  # what taskset -c takes: a core, or a list such as "0,1"
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                ["taskset", "-c", str(cpu), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        self._write_pidfile()
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)
        self._write_pidfile()

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)

    def _write_pidfile(self) -> None:
        if self.pidfile is not None:
            self.pidfile.write_text("".join(f"{p.pid}\n" for p in self.procs if p.alive()))

    def __enter__(self) -> Procs:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_ready(proc: Proc, port: int, path: str, timeout: float) -> str | None:
    """None once GET ``path`` answers 200; otherwise why not (process died, timed out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            return f"{proc.name} exited with code {proc.popen.returncode}: {proc.log_tail()}"
        try:
            if http_request(port, "GET", path, timeout=1.0)[0] == 200:
                return None
        except OSError:
            pass
        time.sleep(0.1)
    return f"{proc.name} not ready after {timeout:.0f} s: {proc.log_tail()}"


class Redis:
    """A throwaway redis-server on a free port, driven with redis-cli."""

    def __init__(self, procs: Procs, cpu: int) -> None:
        # memoserve's one redis-server command line, started pinned by the bench's registry.
        server = RedisServer(procs.workdir / "redis-data")
        server.workdir.mkdir(exist_ok=True)
        self.port = server.port
        self.proc = procs.start("redis", cpu, server.args())
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline or not self.proc.alive():
                raise RuntimeError(f"redis-server did not start: {self.proc.log_tail()}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip()

    def stats(self) -> dict[str, int]:
        """keyspace_hits / keyspace_misses and the other integer INFO stats fields."""
        out: dict[str, int] = {}
        for line in self.cli("INFO", "stats").splitlines():
            key, _, value = line.strip().partition(":")
            if value.isdigit():
                out[key] = int(value)
        return out


def wait_port(proc: Proc, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{proc.name}: port {port} not open after {timeout} s")
