"""Redis URL parsing and TLS setup (pure)."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from memoserve_contract.settings import ModelFormat, ServingSettings
from memoserve_dev.tls import TlsFiles
from memoserve_serving.cache.iam import IamTokenSource
from memoserve_serving.cache.redis_config import RedisConfig


@pytest.mark.parametrize(
    ("url", "host", "port", "db", "username", "password"),
    [
        ("redis://10.0.0.3", "10.0.0.3", 6379, 0, None, None),
        ("redis://10.0.0.3:6378/2", "10.0.0.3", 6378, 2, None, None),
        ("redis://:s3cret@host/0", "host", 6379, 0, None, "s3cret"),
        ("redis://alice:pa%3Ass%40@host:7000/15", "host", 7000, 15, "alice", "pa:ss@"),
        ("redis://[::1]:6380", "::1", 6380, 0, None, None),
        ("redis://host/", "host", 6379, 0, None, None),
    ],
)
def test_url_parts(
    url: str, host: str, port: int, db: int, username: str | None, password: str | None
) -> None:
    config = RedisConfig.from_url(url)
    assert (config.host, config.port, config.db) == (host, port, db)
    assert (config.username, config.password) == (username, password)
    assert not config.tls


@pytest.mark.parametrize(
    "url", ["http://host", "redis://", "redis://host/zero", "redis://host:99999", "redis://h:x"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="Redis URL"):
        RedisConfig.from_url(url)


def test_separate_password_wins_over_the_url() -> None:
    config = RedisConfig.from_url("redis://:in-url@host", password="from-secret")
    assert config.password == "from-secret"


def test_rediss_always_verifies_the_ca_and_checks_hostname_only_on_request(
    tls_files: TlsFiles,
) -> None:
    relaxed = RedisConfig.from_url("rediss://10.0.0.3:6378", ca_file=tls_files.ca_path)
    assert relaxed.ssl_context is not None
    assert relaxed.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert not relaxed.ssl_context.check_hostname
    strict = RedisConfig.from_url("rediss://host", ca_file=tls_files.ca_path, check_hostname=True)
    assert strict.ssl_context is not None
    assert strict.ssl_context.check_hostname


def test_password_never_shows_in_the_address() -> None:
    config = RedisConfig.from_url("redis://user:topsecret@host:1/3")
    assert config.address == "redis://host:1/3"
    assert "topsecret" not in repr(config.address)


def test_from_settings_reads_the_contract(tls_files: TlsFiles) -> None:
    settings = ServingSettings(
        model_name="m",
        model_uri="/models/m",
        model_format=ModelFormat.ONNX,
        redis_url="rediss://10.0.0.3:6378/1",
        redis_password=SecretStr("auth-string"),
        redis_ca_file=tls_files.ca_path,
        redis_timeout_ms=25,
    )
    config = RedisConfig.from_settings(settings)
    assert (config.host, config.port, config.db, config.password) == (
        "10.0.0.3",
        6378,
        1,
        "auth-string",
    )
    assert config.tls
    assert config.timeout == pytest.approx(0.025)
    assert config.effective_connect_timeout == pytest.approx(0.025)
    assert config.effective_stall_timeout == pytest.approx(1.0)


def test_the_auth_string_file_wins_and_a_missing_one_means_none(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-the-secret\n")  # kubectl create secret often leaves a newline
    base = {"model_name": "m", "model_uri": "/m", "model_format": "onnx"}
    settings = ServingSettings(
        **base,
        redis_url="redis://10.0.0.3:6379/0",
        redis_password="from-env",
        redis_password_file=secret,
    )
    assert RedisConfig.from_settings(settings).password == "from-the-secret"
    missing = settings.model_copy(update={"redis_password_file": tmp_path / "absent"})
    assert RedisConfig.from_settings(missing).password == "from-env"
    unset = settings.model_copy(update={"redis_password": None, "redis_password_file": None})
    assert RedisConfig.from_settings(unset).password is None


def test_iam_auth_replaces_the_password_with_one_token_source_for_every_node(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = ServingSettings(
        model_name="m",
        model_uri="/m",
        model_format=ModelFormat.ONNX,
        redis_url="rediss://10.0.0.3:6378/0",
        redis_password="an-auth-string",
        redis_auth="iam",
    )
    config = RedisConfig.from_settings(settings)  # no I/O: the token comes on first use
    assert isinstance(config.credentials, IamTokenSource)
    assert config.password is None  # never sent, not even as a fallback
    assert "the configured Redis password is not used" in caplog.text
    # A cluster client's per-node copies share the source: one token, one refresh.
    node = dataclasses.replace(config, host="10.0.0.4", port=6379)
    assert node.credentials is config.credentials
    password_mode = settings.model_copy(update={"redis_auth": "password"})
    assert RedisConfig.from_settings(password_mode).credentials is None
