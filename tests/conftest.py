"""Fixtures shared by every test tier: real redis-server processes, free ports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from memoserve_dev.metadata_server import MetadataServer
from memoserve_dev.redis_server import RedisServer
from memoserve_dev.tls import TlsFiles, make_tls
from tests.support.gcs import GcsEmulator


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A plain redis-server shared by the session; flushed by ``redis_url``."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.start()  # a fault test may have left it stopped
    redis_server.cli("FLUSHALL")
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to kill and restart at will."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"), "127.0.0.1", "test")


@pytest.fixture
def tls_redis(tmp_path: Path, tls_files: TlsFiles) -> Iterator[RedisServer]:
    """redis-server with AUTH and TLS only (server authentication), like Memorystore's."""
    server = RedisServer(tmp_path / "redis-tls", password="s3cret-auth", tls=tls_files)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sample_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample models `make run` serves (iris: ONNX, scikit-learn, XGBoost), built once."""
    from memoserve_dev.sample_models import write_sample_models

    out = tmp_path_factory.mktemp("sample-models")
    write_sample_models(out)
    return out


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """A Cloud Storage emulator shared by the session (``wipe`` it before use)."""
    emulator = GcsEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def metadata_server() -> Iterator[MetadataServer]:
    """A GCE metadata server that google-auth in this process finds (GCE_METADATA_HOST/IP);
    use it through ``gce_metadata``, which resets it for each test."""
    server = MetadataServer()
    server.start()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.environ().items():
            patch.setenv(name, value)
        _reread_metadata_host()
        yield server
    _reread_metadata_host()
    server.stop()


def _reread_metadata_host() -> None:
    """google-auth reads GCE_METADATA_HOST once, when its _metadata module is imported: make it
    read it again if an earlier test imported it."""
    module = sys.modules.get("google.auth.compute_engine._metadata")
    if module is not None:
        importlib.reload(module)


@pytest.fixture
def gce_metadata(
    metadata_server: MetadataServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> MetadataServer:
    """The metadata server, handing out its first token again; and nothing else that
    Application Default Credentials could find (no key file, no gcloud login)."""
    metadata_server.reset("ya29.first-token")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    return metadata_server
