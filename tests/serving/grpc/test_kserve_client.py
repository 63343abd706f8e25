"""KServe's ``InferenceGRPCClient`` (kserve 0.21) against a real memoserve server.

kserve brings ~70 packages and its own ``inference.*`` stubs, so it lives in a virtualenv of
its own (``make tools``: ``.local/kserve``) and talks to the server from a script run by that
interpreter (kserve_client.py). Its client does not expose trailing metadata, so the cache
result is read from the server's counters instead of ``x-memoserve-cache``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.models import AffineModel
from tests.support.serving import ServerThread, serving_settings

pytestmark = pytest.mark.usefixtures("grpc_transport")

ROOT = Path(__file__).resolve().parents[3]
KSERVE_VENV = ROOT / ".local/kserve"  # made by `make tools`, which touches .installed last
SCRIPT = Path(__file__).with_name("kserve_client.py")


def run_kserve_client(target: str) -> dict[str, Any]:
    if not (KSERVE_VENV / ".installed").exists():
        pytest.fail(f"KServe's client is not installed in {KSERVE_VENV}: run `make tools`")
    done = subprocess.run(
        [str(KSERVE_VENV / "bin/python"), str(SCRIPT), target, "affine", "x"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def cache_counts(url: str) -> dict[str, float]:
    """memoserve_requests_total by cache result."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        for sample in family.samples:
            if sample.name == "memoserve_requests_total":
                cache = sample.labels["cache"]
                counts[cache] = counts.get(cache, 0) + sample.value
    return counts


def test_kserve_inference_grpc_client_typed_and_raw(redis_url: str) -> None:
    model = AffineModel()
    with ServerThread(serving_settings(redis_url=redis_url), model) as server:
        report = run_kserve_client(server.grpc_target)
        counts = cache_counts(server.url)

    assert [report[k] for k in ("server_live", "server_ready", "model_ready")] == [True] * 3
    assert report["metadata"] == {
        "name": "affine",
        "platform": "numpy_test",
        "inputs": [["x", "FP32", [-1, 4]]],
        "outputs": ["y", "sum"],
    }
    # y = 2x + 1, sum = the row's sum of y (AffineModel).
    expected = {
        "typed": ([[3.0, 5.0, 7.0, 9.0]], [24.0]),
        "raw": ([[19.0, 17.0, 15.0, 13.0]], [64.0]),
    }
    for kind, (y, total) in expected.items():
        answers = report[kind]
        assert [a["id"] for a in answers] == [f"{kind}-1", f"{kind}-2"]
        for answer in answers:
            assert answer["outputs"] == {
                "y": {"datatype": "FP32", "shape": [1, 4], "data": y},
                "sum": {"datatype": "FP32", "shape": [1], "data": total},
            }
    assert report["bad"]["code"] == "INVALID_ARGUMENT"
    assert "'x'" in report["bad"]["details"]
    # Each row ran the model once; each second call was answered from the cache.
    assert model.calls == 2
    assert counts == {"miss": 2, "hit": 2, "bypass": 1}
