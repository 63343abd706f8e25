"""Several server processes on the same ports (``MEMOSERVE_WORKERS``): a cache front's cores.

Python serves a hit on one core; a front pod with N cores runs N workers. The parent reserves
the ports (bound with SO_REUSEPORT, never listening: it takes no connections, and a port
someone else holds fails here, once), starts the workers (spawned: fresh interpreters, each
with its own event loop, cache connections and data plane), and then only supervises:

- SIGTERM / SIGINT go to every worker, which drains as a single server does (server.py);
- a worker that exits on its own takes the others down and the pod restarts (Kubernetes sees
  the exit code): a pod half-serving at reduced capacity would hide the failure;
- a parent that dies (even by SIGKILL) takes the workers with it (PR_SET_PDEATHSIG).

The workers' metrics meet in a directory the parent makes under TMPDIR (the pod's /tmp) and
removes when they are done: /metrics on any worker is the pod's (worker_metrics.py).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import cast

from memoserve_contract.logs import configure_logging
from memoserve_contract.settings import ServingSettings
from memoserve_serving.http.server import run_server
from memoserve_serving.http.sockets import reuse_port_socket

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _reserve(host: str, port: int) -> tuple[socket.socket, int]:
    sock = reuse_port_socket(host, port, listen=False)
    return sock, int(sock.getsockname()[1])


def _worker(settings: ServingSettings, parent: int) -> None:
    _stop_with(parent)
    run_server(settings)


def _stop_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent goes, however it goes (SIGKILL
    too): a worker left behind would go on serving the port. Linux only; in a pod the end of
    the container takes every process anyway."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    if prctl is None:
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        log.warning("cannot ask to be stopped with the parent: errno %d", ctypes.get_errno())
    if os.getppid() != parent:  # it went before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def run_workers(settings: ServingSettings) -> int:
    """Run ``settings.workers`` servers until they stop; the exit code for the process."""
    configure_logging(settings.log_level, settings.log_format)
    reserved: list[socket.socket] = []
    try:
        ports: dict[str, int | None] = {}
        for name in ("port", "grpc_port", "grpc_tls_port"):
            wanted = getattr(settings, name)
            if wanted is None or (name != "port" and not settings.grpc_enabled):
                continue
            sock, ports[name] = _reserve(settings.host, wanted)
            reserved.append(sock)
    except OSError as exc:
        log.error("cannot listen on %s: %s", settings.host, exc)
        for sock in reserved:
            sock.close()
        return 1
    metrics_dir = Path(tempfile.mkdtemp(prefix="memoserve-metrics-"))
    update: dict[str, object] = {**ports, "workers": 1, "reuse_port": True}
    update["worker_metrics_dir"] = metrics_dir
    each = settings.model_copy(update=update)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(each, os.getpid()), name=f"memoserve-worker-{i}")
        for i in range(settings.workers)
    ]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:  # the same signal: a second one stops a worker at once
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        log.info(
            "%d workers on port %s (gRPC %s)",
            len(processes),
            ports["port"],
            ports.get("grpc_port"),
        )
        return _supervise(processes, lambda: stopping)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in reserved:
            sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(processes: Sequence[BaseProcess], stopping: Callable[[], bool]) -> int:
    """Wait for every worker; the first failure's exit code (0 if none failed)."""
    running = {process.sentinel: process for process in processes}
    code = 0
    while running:
        for sentinel in wait(list(running)):
            process = running.pop(cast(int, sentinel))
            process.join()
            exit_code = process.exitcode or 0
            if exit_code and not code:
                code = exit_code
            if running and not stopping():
                log.error("%s exited (%s): stopping the others", process.name, exit_code)
                for other in running.values():
                    other.terminate()
                code = code or 1
    return code
