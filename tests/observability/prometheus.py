"""A real Prometheus server (Debian's ``prometheus`` package, scripts/install-system-deps.sh)
scraping the targets a test names, and its HTTP query API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from memoserve_dev.ports import free_port
from tests.support.controlplane import dies_with_parent

SCRAPE_SECONDS = 1.0


@dataclass(frozen=True)
class Target:
    """One scrape job: ``address`` (host:port) with the labels a GKE scrape would add."""

    job: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    # kube-state-metrics names the objects' own namespace: keep it (as kube-prometheus does),
    # instead of renaming it exported_namespace.
    honor_labels: bool = False


class PrometheusError(Exception):
    pass


class PrometheusServer:
    def __init__(self, workdir: Path, targets: Sequence[Target]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusError("prometheus is not installed: scripts/install-system-deps.sh")
        self.binary = binary
        self.workdir = workdir
        self.targets = targets
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        interval = f"{SCRAPE_SECONDS:g}s"
        return {
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [
                {
                    "job_name": target.job,
                    "honor_labels": target.honor_labels,
                    "static_configs": [
                        {"targets": [target.address], "labels": dict(target.labels)}
                    ],
                }
                for target in self.targets
            ],
        }

    def start(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            dies_with_parent(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited: {self.log()}")
            if time.monotonic() > deadline:
                raise PrometheusError(f"prometheus not ready after 30 s: {self.log()}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self, lines: int = 30) -> str:
        path = self.workdir / "prometheus.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def api(self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> Any:
        """GET /api/v1/PATH; an error answer (a bad query) raises with Prometheus's message."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)  # type: ignore[arg-type]
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        data = self.api("query_range", {"query": expr, "start": start, "end": end, "step": step})
        result: list[Any] = data["result"]
        return result

    def query(self, expr: str) -> list[Any]:
        result: list[Any] = self.api("query", {"query": expr})["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self.api(f"label/{label}/values", [("match[]", match)])
        return values

    def scraped_metric_names(self, job: str) -> set[str]:
        """The metric names one job's targets exposed (not Prometheus's own up, scrape_*)."""
        names = self.label_values("__name__", f'{{job="{job}"}}')
        return {n for n in names if n != "up" and not n.startswith("scrape_")}

    def wait_for(self, expr: str, timeout: float = 30) -> list[Any]:
        """Poll an instant query until it returns a series (a scrape has seen something)."""
        deadline = time.monotonic() + timeout
        while not (result := self.query(expr)):
            if time.monotonic() > deadline:
                raise PrometheusError(f"no series for {expr} after {timeout:.0f} s: {self.log()}")
            time.sleep(0.25)
        return result
