"""``memoserve run -f`` of a split service (spec.front with the built-in runtime): the model
tier as a ``memoserve serve`` process of its own, with the settings its pods get
(``pod_settings.model_env``: the model, no cache, no gRPC), on a free loopback port. The run
itself is then its cache front, as the front pods are on GKE. Stopped with the run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from memoserve_cli.run import RunError
from memoserve_contract.pod_settings import model_env
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import env_var
from memoserve_dev.ports import free_port

READY_TIMEOUT = 600.0  # a gs:// model may take a while to download


def start_model_tier(
    isvc: InferenceService, stack: contextlib.ExitStack, workdir: Path, model_dir: Path
) -> str:
    """The model tier's URL once it is ready; RunError with its own last line if it is not."""
    env = model_env(isvc, default_drain_seconds=0)
    return start_serve(env, stack, workdir, model_dir, what="the model tier", log="model-tier")


def start_serve(
    settings_env: dict[str, str],
    stack: contextlib.ExitStack,
    workdir: Path,
    model_dir: Path,
    *,
    what: str,
    log: str,
) -> str:
    """``memoserve serve`` with ``settings_env`` (a pod's settings) on a free loopback port,
    stopped with the run: its URL once it is ready; RunError with its own last line if it is
    not. ``what`` names it in errors, ``log`` its log file in ``workdir``."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMOSERVE_")}
    env |= settings_env
    env.pop(env_var("termination_log"), None)  # a pod's file
    env |= {
        env_var("host"): "127.0.0.1",
        env_var("port"): str(port),
        env_var("model_dir"): str(model_dir),
        env_var("log_format"): "text",
        env_var("log_level"): "WARNING",
    }
    log_file = workdir / f"{log}.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "memoserve_cli", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack.callback(_stop, process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(url):
        if process.poll() is not None:
            lines = log_file.read_text(errors="replace").strip().splitlines() or ["(no output)"]
            raise RunError(f"{what} exited ({process.returncode}): {lines[-1]}")
        if time.monotonic() > deadline:
            raise RunError(f"{what} was not ready after {READY_TIMEOUT:.0f} s")
        time.sleep(0.1)
    return url


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
