"""``memoserve operator`` as a real process, for the e2e tier and the scale benchmark.

It runs as its ServiceAccount (a kubeconfig with a TokenRequest token), so RBAC applies exactly
as in a cluster, with leader election on, and logs to a file the tests can show on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.controlplane import dies_with_parent

MEMOSERVE = Path(sys.executable).parent / "memoserve"


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log_path: Path, env: Mapping[str, str]) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        assert self.process is None or self.process.poll() is not None, "already running"
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MEMOSERVE_", "KUBERNETES_"))
        }
        environ |= {"KUBECONFIG": str(self.kubeconfig), "MEMOSERVE_LOG_FORMAT": "text"} | self.env
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            dies_with_parent([str(MEMOSERVE), "operator"]),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, as the kubelet stops a pod: kopf finishes, the Lease is released."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: a crash or an evicted node; nothing is released."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
