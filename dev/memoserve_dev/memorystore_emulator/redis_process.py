"""One real ``redis-server`` per emulated instance, on a free port of the emulator's host.

AUTH (``--requirepass``) when the instance has authEnabled, TLS only (no plaintext port) with
in-transit encryption, ``maxmemory`` from memorySizeGb and the instance's redisConfigs. Methods
block (process start, waiting for the port): the backend calls them in a thread.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from memoserve_dev.tls import TlsFiles

GIB = 1024**3
START_TIMEOUT_SECONDS = 10.0
# Memorystore's redisConfigs that redis-server takes as they are (maxmemory-gb is converted).
PASSTHROUGH_CONFIGS = frozenset(
    {
        "maxmemory-policy",
        "notify-keyspace-events",
        "activedefrag",
        "lfu-decay-time",
        "lfu-log-factor",
        "maxmemory-clients",
        "stream-node-max-bytes",
        "stream-node-max-entries",
    }
)
SUPPORTED_CONFIGS = PASSTHROUGH_CONFIGS | {"maxmemory-gb"}


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (e.g. apt-get install redis-server)")
    return binary


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisProcess:
    def __init__(
        self,
        workdir: Path,
        host: str,
        port: int,
        *,
        password: str | None,
        tls: TlsFiles | None,
        memory_size_gb: int,
        configs: Mapping[str, str],
    ) -> None:
        self.workdir, self.host, self.port = workdir, host, port
        self.password, self.tls = password, tls
        self.memory_size_gb, self.configs = memory_size_gb, dict(configs)
        self._process: subprocess.Popen[bytes] | None = None

    def args(self) -> list[str]:
        maxmemory = float(self.configs.get("maxmemory-gb", self.memory_size_gb)) * GIB
        args = [
            redis_server_binary(),
            *("--bind", self.host, "--save", "", "--appendonly", "no"),
            *("--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")),
            *("--maxmemory", str(int(maxmemory))),
        ]
        if self.tls is not None:
            args += [
                *("--port", "0", "--tls-port", str(self.port)),
                *("--tls-cert-file", str(self.tls.cert_path)),
                *("--tls-key-file", str(self.tls.key_path)),
                *("--tls-ca-cert-file", str(self.tls.ca_path)),
                *("--tls-auth-clients", "no"),  # server authentication only, like Memorystore
            ]
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        for key, value in sorted(self.configs.items()):
            if key in PASSTHROUGH_CONFIGS:
                args += [f"--{key}", value]
        return args

    def start(self) -> None:
        """Start and wait until the port answers; RuntimeError with the log when it does not."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self._log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not listen: {self._log_tail()}") from None
                time.sleep(0.01)

    def _log_tail(self) -> str:
        log = self.workdir / "redis.log"
        return log.read_text()[-500:] if log.exists() else "(no log)"

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None
