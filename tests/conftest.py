"""Fixtures shared by every test tier: real redis-server processes, free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
