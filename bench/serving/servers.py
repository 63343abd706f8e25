"""How each server under test is started (always on the server core)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from procs import Proc, Procs

from memoserve_dev.ports import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = Path(os.environ.get("VENV", ROOT / ".venv"))
MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", ROOT / ".local/mlserver"))

# What every memoserve row runs with unless the row says otherwise. L1 is off: the Redis hit
# path is what the hit rows measure.
MEMOSERVE_ENV = {
    "MEMOSERVE_LOG_LEVEL": "WARNING",
    "MEMOSERVE_DRAIN_SECONDS": "0",
    "MEMOSERVE_L1_MAX_BYTES": "0",
}


def clean_env() -> dict[str, str]:
    """The environment without any MEMOSERVE_* / MLSERVER_* the caller may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MEMOSERVE_", "MLSERVER_"))}


def start_raw(procs: Procs, cpu: int, port: int, http: str = "httptools") -> Proc:
    argv = [str(VENV / "bin/uvicorn"), "--app-dir", str(HERE), "raw_asgi:app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", http]
    argv += ["--no-access-log", "--log-level", "warning"]
    return procs.start("raw-asgi", cpu, argv, env=clean_env())


def start_raw_granian(procs: Procs, cpu: int, port: int) -> Proc:
    """raw_rsgi.py's fixed answer on granian (one worker process)."""
    argv = [str(VENV / "bin/granian"), "--interface", "rsgi", "--http", "1", "--loop", "uvloop"]
    argv += ["--no-ws", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    argv += ["--working-dir", str(HERE), "raw_rsgi:app"]
    return procs.start("raw-granian", cpu, argv, env=clean_env())


def start_memoserve(
    procs: Procs,
    cpu: int,
    port: int,
    *,
    label: str,
    model_name: str,
    model: Path,
    model_format: str,
    redis_url: str,
    env: Mapping[str, str],
) -> Proc:
    argv = [str(VENV / "bin/memoserve"), "serve", "--model-name", model_name]
    argv += ["--model-uri", str(model), "--model-format", model_format]
    argv += ["--redis-url", redis_url, "--host", "127.0.0.1", "--port", str(port)]
    full_env = {**clean_env(), **MEMOSERVE_ENV, **env}
    return procs.start(label, cpu, argv, env=full_env)


def mlserver_available() -> str | None:
    """None when the MLServer virtualenv is usable; otherwise why not."""
    if (MLSERVER_VENV / "bin/mlserver").exists():
        return None
    return f"MLServer not installed in {MLSERVER_VENV} (see .local/bench/mlserver-install.log)"


def start_mlserver(
    procs: Procs,
    cpu: int,
    port: int,
    *,
    model_name: str,
    model: Path,
    workdir: Path,
    grpc_port: int | None = None,
    tensors: dict[str, Any] | None = None,
) -> Proc:
    """MLServer + mlserver-sklearn on a joblib model: inference in the server process
    (parallel_workers=0, as in the baselines), no access log; the rest as shipped.
    ``tensors``: the inputs and outputs its model metadata lists (none unless told)."""
    repo = workdir / "mlserver-repo"
    model_dir = repo / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, model_dir / "model.joblib")
    settings = {
        "debug": False,
        "parallel_workers": 0,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port or free_port(),
        "metrics_port": free_port(),
        "metrics_dir": str(workdir / "mlserver-metrics"),
    }
    (repo / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": model_name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
        **(tensors or {}),
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    argv = [str(MLSERVER_VENV / "bin/mlserver"), "start", str(repo)]
    return procs.start("mlserver", cpu, argv, env=clean_env(), cwd=workdir)
