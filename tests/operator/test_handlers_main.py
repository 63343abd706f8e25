"""``memoserve operator`` as a process: kubeconfig login, liveness, metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from memoserve_dev.ports import free_port
from memoserve_operator.main import kopf_options
from memoserve_operator.settings import OperatorSettings
from tests.operator.fake_api import (
    ISVC,
    NAMESPACE,
    declare_resources,
    eventually,
    isvc_body,
    path,
    send,
    write_kubeconfig,
)
from tests.operator.fake_leases import LeaseKube

pytestmark = pytest.mark.kmock(cls=LeaseKube)  # the process runs with leader election

MEMOSERVE = Path(sys.executable).parent / "memoserve"
ISVC_KIND = ("serving.memoserve.dev/v1alpha1", "InferenceService")


@pytest.mark.parametrize(
    ("namespaces", "clusterwide"),
    [((), True), (("ml",), False), (("ml", "team-*"), False)],
)
def test_kopf_watches_the_configured_namespaces(
    namespaces: tuple[str, ...], clusterwide: bool
) -> None:
    options = kopf_options(OperatorSettings(namespaces=namespaces, liveness_url="http://x/h"))
    assert options == {
        "standalone": True,
        "clusterwide": clusterwide,
        "namespaces": list(namespaces),
        "liveness_endpoint": "http://x/h",
    }


async def test_invalid_settings_exit_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "MEMOSERVE_OPERATOR_METRICS_PORT": "not-a-port"}
    process = await asyncio.create_subprocess_exec(
        str(MEMOSERVE),
        "operator",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert stderr.decode().startswith("error: MEMOSERVE_OPERATOR_METRICS_PORT: ")


async def get(url: str) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as response:
        return response.status, await response.text()


async def answers(url: str) -> bool:
    try:
        return (await get(url))[0] == 200
    except aiohttp.ClientError:
        return False


async def test_the_operator_process(kmock: Any, tmp_path: Path) -> None:
    declare_resources(kmock, extra=["apiextensions.k8s.io/v1/customresourcedefinitions"])
    health, metrics = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMOSERVE_")} | {
        "KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))),
        "MEMOSERVE_OPERATOR_LIVENESS_URL": f"http://127.0.0.1:{health}/healthz",
        "MEMOSERVE_OPERATOR_METRICS_PORT": str(metrics),
        "MEMOSERVE_OPERATOR_LOG_FORMAT": "text",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    process = await asyncio.create_subprocess_exec(
        str(MEMOSERVE),
        "operator",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = False
        async with asyncio.timeout(30):
            while not ready:
                ready = await answers(f"http://127.0.0.1:{health}/healthz")
                await asyncio.sleep(0.1)
        await send(kmock, "POST", path(*ISVC_KIND), isvc_body(), "application/json")
        await eventually(lambda: "status" in kmock.objects[ISVC, NAMESPACE, "iris"], within=15)
        status, text = await get(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200
        assert 'memoserve_operator_writes_total{kind="Deployment",verb="apply"} 1.0' in text
        assert "memoserve_operator_reconcile_duration_seconds_count" in text
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
