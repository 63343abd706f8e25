"""`memoserve run -f FILE` as users run it: a real process on the quickstart example, real
signals, a real redis-server (or none on PATH), a gs:// model from the GCS emulator."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from memoserve_dev.redis_server import RedisServer
from tests.support.gcs import BUCKET, GcsEmulator
from tests.support.peers import mlserver

MEMOSERVE = str(Path(sys.executable).with_name("memoserve"))
QUICKSTART = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "quickstart.yaml"


class Running:
    """``memoserve run`` in a subprocess; stdout is collected line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [MEMOSERVE, "run", "--port", "0", "--grpc-port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        self.lines.extend(self.process.stdout)

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    def wait_banner(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while "Ctrl-C stops it." not in self.stdout:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGTERM)
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"no banner:\n{self.stdout}\n{stderr}")
            time.sleep(0.02)
        return self.stdout

    def curl(self) -> tuple[str, str]:
        """(URL, body) of the curl example the banner printed."""
        lines = self.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("curl "))
        words = shlex.split(lines[start].rstrip("\\") + " " + lines[start + 1])
        return words[2], words[words.index("-d") + 1]

    def grpcurl(self) -> list[str]:
        """The grpcurl example the banner printed, as argv."""
        lines = self.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("grpcurl "))
        return shlex.split(lines[start].rstrip("\\") + " " + lines[start + 1])

    def children(self) -> list[int]:
        pid = self.process.pid
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(child) for child in text.split()]

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._reader.join(timeout=5)

    @property
    def stderr(self) -> str:
        return self.process.stderr.read() if self.process.stderr else ""


Starter = Callable[[list[str], dict[str, str]], Running]


@pytest.fixture
def start() -> Iterator[Starter]:
    """Starts ``memoserve run``; whatever a test left running is killed at its end."""
    started: list[Running] = []

    def start(args: list[str], env: dict[str, str]) -> Running:
        started.append(Running(args, env))
        return started[-1]

    yield start
    for running in started:
        running.stop(signal.SIGTERM)  # a clean stop: it stops its redis-server too


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **extra}


def _quickstart(tmp_path: Path, uri: str, **spec: Any) -> Path:
    """The quickstart example with the model at ``uri`` (and ``spec`` merged in)."""
    document = yaml.safe_load(QUICKSTART.read_text())
    document["spec"]["model"]["uri"] = uri
    document["spec"].update(spec)
    path = tmp_path / "quickstart.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def quickstart(tmp_path: Path, sample_models: Path) -> Path:
    return _quickstart(tmp_path, str(sample_models / "iris.onnx"))


def _ask_twice(running: Running) -> list[str]:
    url, body = running.curl()
    headers = {"Content-Type": "application/json"}
    answers = [httpx.post(url, content=body, headers=headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].json()["outputs"] == answers[1].json()["outputs"]
    return [a.headers["x-memoserve-cache"] for a in answers]


def grpcurl() -> str:
    """grpcurl, built by scripts/build-grpcurl.sh (`make tools`), once per machine."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "build-grpcurl.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"grpcurl could not be built (make tools): {done.stderr}"
    return done.stdout.splitlines()[-1]


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_quickstart_with_redis_server_on_path(
    start: Starter, quickstart: Path, tmp_path: Path
) -> None:
    running = start(["-f", str(quickstart)], _env(tmp_path))
    banner = running.wait_banner()
    assert "InferenceService default/quickstart" in banner
    assert "/v2/models/iris" in banner  # spec.model.name, not metadata.name
    assert "redis-server on 127.0.0.1:" in banner
    assert "started for this run, stopped on exit" in banner
    assert '"name":"float_input","shape":[1,4],"datatype":"FP32"' in banner
    (redis_pid,) = running.children()
    assert _ask_twice(running) == ["miss", "hit"]
    # The grpcurl it prints works as printed (grpcurl built from its Go module, by reflection),
    # and a question asked over HTTP is a hit over gRPC.
    argv = running.grpcurl()
    assert argv[0] == "grpcurl"
    done = subprocess.run([grpcurl(), *argv[1:]], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "x-memoserve-cache: hit" in done.stdout
    assert '"name": "label"' in done.stdout
    assert running.stop(signal.SIGINT) == 0  # Ctrl-C
    assert not _alive(redis_pid)
    assert running.stdout.rstrip().endswith("stopped")
    assert "Traceback" not in running.stderr


def test_no_redis_server_on_path_caches_in_process(
    start: Starter, quickstart: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    running = start(["-f", str(quickstart)], _env(tmp_path, PATH=str(empty)))
    banner = running.wait_banner()
    notices = [line for line in banner.splitlines() if line.startswith("note: ")]
    assert notices == [
        "note: no redis-server on PATH: answers are cached in this process only (LRU, 256 MiB, "
        "gone on exit); install redis-server to cache in Redis"
    ]
    assert "cache   in-process LRU" in banner
    assert running.children() == []
    assert _ask_twice(running) == ["miss", "hit"]
    assert running.stop(signal.SIGTERM) == 0


def test_redis_url_wins_over_the_spec(
    start: Starter, quickstart: Path, tmp_path: Path, redis_server: RedisServer, redis_url: str
) -> None:
    running = start(["-f", str(quickstart), "--redis-url", redis_url], _env(tmp_path))
    banner = running.wait_banner()
    assert f"cache   Redis at redis://127.0.0.1:{redis_server.port}/0 (--redis-url)" in banner
    assert running.children() == []  # no redis-server of its own
    assert _ask_twice(running) == ["miss", "hit"]
    # The key carries the namespace/name the operator would give the pods.
    assert ":default/quickstart:" in redis_server.cli("KEYS", "*")
    assert running.stop(signal.SIGTERM) == 0


@pytest.fixture
def iris_in_gcs(sample_models: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsEmulator]:
    from google.cloud import storage

    emulator = GcsEmulator()
    emulator.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
        blob = storage.Client(project="test").bucket(BUCKET).blob("iris/iris.onnx")
        blob.upload_from_filename(str(sample_models / "iris.onnx"))
        yield emulator
    finally:
        emulator.stop()


def test_gs_model_from_the_emulator(
    start: Starter, iris_in_gcs: GcsEmulator, tmp_path: Path
) -> None:
    path = _quickstart(tmp_path, f"gs://{BUCKET}/iris/iris.onnx", gpu={"type": "nvidia-l4"})
    env = _env(tmp_path, STORAGE_EMULATOR_HOST=iris_in_gcs.url, PATH=str(tmp_path))
    running = start(["-f", str(path)], env)
    banner = running.wait_banner()
    assert "note: spec.gpu (1 x nvidia-l4) applies on GKE; locally the model runs on CPU" in banner
    assert f"(onnx, gs://{BUCKET}/iris/iris.onnx)" in banner
    assert _ask_twice(running) == ["miss", "hit"]
    assert running.stop() == 0
    assert f"downloading gs://{BUCKET}/iris/iris.onnx" in running.stderr  # the progress bar
    assert list((tmp_path / "cache" / "memoserve" / "models").glob("gcs-*/iris.onnx"))


def test_upstream_makes_it_the_cache_front_of_a_running_server(
    start: Starter, quickstart: Path, tmp_path: Path, sample_models: Path
) -> None:
    (tmp_path / "mlserver").mkdir()
    upstream = mlserver(tmp_path / "mlserver", sample_models / "iris.joblib").start()
    try:
        running = start(["-f", str(quickstart), "--upstream", upstream.url], _env(tmp_path))
        banner = running.wait_banner()
        assert f"model   iris (cache front of {upstream.url})" in banner
        assert "lists no inputs: POST your request to http://127.0.0.1:" in banner
        url = banner.split("POST your request to ", 1)[1].split(")", 1)[0]
        flower = [5.1, 3.5, 1.4, 0.2]
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": flower}]}
        answers = [httpx.post(url, json=body, timeout=10) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200], answers[0].text
        assert [a.headers["x-memoserve-cache"] for a in answers] == ["miss", "hit"]
        assert running.stop(signal.SIGTERM) == 0
    finally:
        upstream.stop()


def test_a_model_server_service_runs_as_the_front_of_the_given_upstream(
    start: Starter, tmp_path: Path, sample_models: Path
) -> None:
    """The front-triton example, its Triton stood in for by an MLServer (run by the user)."""
    document = yaml.safe_load((QUICKSTART.parent / "front-triton.yaml").read_text())
    document["spec"]["model"]["server"]["modelName"] = "iris"  # its name at the upstream
    del document["spec"]["model"]["version"]
    document["spec"]["cache"] = {"memorystore": {}}
    spec = tmp_path / "front.yaml"
    spec.write_text(yaml.safe_dump(document))
    (tmp_path / "mlserver").mkdir()
    upstream = mlserver(tmp_path / "mlserver", sample_models / "iris.joblib").start()
    try:
        running = start(["-f", str(spec), "--upstream", upstream.url], _env(tmp_path))
        banner = running.wait_banner()
        assert f"model   ranker (cache front of {upstream.url})" in banner
        url = banner.split("POST your request to ", 1)[1].split(")", 1)[0]
        assert url.endswith("/v2/models/ranker/infer")
        flower = [6.3, 3.3, 6.0, 2.5]
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": flower}]}
        answers = [httpx.post(url, json=body, timeout=10) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200], answers[0].text
        assert [a.headers["x-memoserve-cache"] for a in answers] == ["miss", "hit"]
        assert answers[0].json()["outputs"][0]["data"] == [2]  # MLServer's iris: virginica
        assert running.stop(signal.SIGTERM) == 0
    finally:
        upstream.stop()


def test_a_split_service_runs_its_model_tier_as_a_process_of_its_own(
    start: Starter, quickstart: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load(quickstart.read_text())
    document["spec"]["front"] = {"enabled": True}
    spec = tmp_path / "split.yaml"
    spec.write_text(yaml.safe_dump(document))
    running = start(["-f", str(spec)], _env(tmp_path))
    banner = running.wait_banner(timeout=60)
    assert "note: starting the model tier (quickstart-model) as a process of its own" in banner
    assert "model   iris (cache front of http://127.0.0.1:" in banner
    tier = [
        pid for pid in running.children()
        if b"memoserve_cli" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]  # fmt: skip
    assert len(tier) == 1
    assert _ask_twice(running) == ["miss", "hit"]
    assert running.stop(signal.SIGTERM) == 0
    assert not _alive(tier[0])


def test_a_valkey_cache_runs_on_a_local_redis_cluster(
    start: Starter, tmp_path: Path, sample_models: Path
) -> None:
    cache = {"ttlSeconds": 600, "valkey": {"shardCount": 3, "replicaCount": 1}}
    spec = _quickstart(tmp_path, str(sample_models / "iris.onnx"), cache=cache)
    running = start(["-f", str(spec)], _env(tmp_path))
    banner = running.wait_banner(timeout=60)
    assert "a Redis Cluster of 3 primaries on 127.0.0.1 ports" in banner
    assert "standing in for spec.cache.valkey" in banner
    nodes = running.children()
    assert len(nodes) == 3  # the primaries (no replicas on a laptop)
    assert _ask_twice(running) == ["miss", "hit"]
    # Different questions land on different shards (a node only accepts its own slots' keys,
    # so where they are is where the cluster put them).
    url, body = running.curl()
    document = json.loads(body)
    for step in range(1, 16):
        document["inputs"][0]["data"][0] = step / 10
        answer = httpx.post(url, json=document)
        assert answer.status_code == 200, answer.text
    ports = [int(p) for p in banner.split(" ports ")[1].split(" standing")[0].split(", ")]
    counts = [_dbsize(port) for port in ports]
    assert sum(counts) >= 16  # the answers (their locks are gone once stored)
    assert sum(1 for count in counts if count) >= 2, counts
    assert running.stop(signal.SIGTERM) == 0
    assert not any(_alive(pid) for pid in nodes)


def _dbsize(port: int) -> int:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), "DBSIZE"], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())
