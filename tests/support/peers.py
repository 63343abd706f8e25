"""Other Open Inference Protocol servers, as real processes: the cache front's upstreams.

Each lives in a virtualenv of its own (their pins are not ours): MLServer in `.local/mlserver`
(scripts/mlserver-venv.sh), KServe in `.local/kserve` (`make tools` makes both).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from memoserve_dev.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
MLSERVER_VENV = ROOT / ".local" / "mlserver"
KSERVE_VENV = ROOT / ".local" / "kserve"


class PeerServer:
    """A server process on ``port``; ``start`` waits for its model to be ready."""

    def __init__(
        self, argv: list[str], port: int, model: str, cwd: Path, counts: Path | None = None
    ) -> None:
        self.argv, self.port, self.model, self.cwd = argv, port, model, cwd
        self.counts = counts  # where the server counts its model's runs, if it does
        self.process: subprocess.Popen[bytes] | None = None
        self.log = cwd / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> PeerServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        ready = f"{self.url}/v2/models/{self.model}/ready"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.argv[0]} not ready: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def require(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"{venv} is missing: run `make tools`")
    return python


def mlserver(
    workdir: Path,
    model_file: Path,
    name: str = "iris",
    port: int = 0,
    tensors: dict[str, Any] | None = None,
) -> PeerServer:
    """MLServer with mlserver-sklearn serving ``model_file`` (a joblib scikit-learn model);
    ``tensors``: the inputs and outputs its metadata lists (none unless told)."""
    require(MLSERVER_VENV)
    repo = workdir / "mlserver-repo"
    (repo / name).mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, repo / name / "model.joblib")
    port = port or free_port()
    settings = {
        "debug": False, "parallel_workers": 0, "host": "127.0.0.1", "http_port": port,
        "grpc_port": free_port(), "metrics_port": free_port(),
        "metrics_dir": str(workdir / "mlserver-metrics"),
    }  # fmt: skip
    (repo / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
        **(tensors or {}),
    }
    (repo / name / "model-settings.json").write_text(json.dumps(model_settings))
    argv = [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(repo)]
    return PeerServer(argv, port, name, workdir)


KSERVE_SCRIPT = Path(__file__).parent / "peer_scripts" / "kserve_affine.py"


def kserve_affine(workdir: Path, port: int = 0) -> PeerServer:
    """A real ``kserve.ModelServer`` serving an ``affine`` model (peer_scripts/kserve_affine.py);
    ``runs(server)`` reads how often it ran."""
    python = require(KSERVE_VENV)
    port = port or free_port()
    counts = workdir / "kserve-runs"
    argv = [str(python), str(KSERVE_SCRIPT), str(port), str(free_port()), str(counts)]
    return PeerServer(argv, port, "affine", workdir, counts)


MISBEHAVING_SCRIPT = Path(__file__).parent / "peer_scripts" / "v2_misbehaving.py"


def misbehaving(workdir: Path, mode: str, seconds: float = 0.0) -> PeerServer:
    """A v2 server whose infer misbehaves by ``mode`` after ``seconds`` (503 + Retry-After, slow,
    refusing some values, not row-wise): peer_scripts/v2_misbehaving.py, under this interpreter
    (stdlib only)."""
    port = free_port()
    counts = workdir / "misbehaving-runs"
    argv = [sys.executable, str(MISBEHAVING_SCRIPT), str(port), "affine", str(counts), mode]
    return PeerServer([*argv, str(seconds)], port, "affine", workdir, counts)


def calls(server: PeerServer) -> list[tuple[int, int]]:
    """The infer calls the misbehaving server got, in the order they came: each one's rows, and
    the calls in progress as it came (itself included)."""
    assert server.counts is not None
    lines = server.counts.with_name(f"{server.counts.name}.rows")
    if not lines.exists():
        return []
    entries = (line.split() for line in lines.read_text().splitlines())
    return [(int(rows), int(active)) for rows, active in entries]


def rows_per_call(server: PeerServer) -> list[int]:
    """The rows of each infer call the misbehaving server got, in the order they came."""
    return [rows for rows, _ in calls(server)]


def runs(server: PeerServer) -> int:
    """How often the server's model ran (kserve_affine and misbehaving count their runs)."""
    assert server.counts is not None
    return int(server.counts.read_text() or 0) if server.counts.exists() else 0
