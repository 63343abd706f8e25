"""The serving pods' environment and their Redis connection: the contract with the server."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from memoserve_contract.redis_endpoint import RedisEndpoint
from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_contract.settings import ServingSettings, env_var
from memoserve_operator.builders import build_all
from memoserve_operator.builders.deployment import build_deployment
from memoserve_operator.builders.redis import SecretKey, redis_refs
from tests.operator.helpers import SETTINGS, make_isvc

TLS_EXTERNAL = {
    "external": {
        "host": "10.0.0.3",
        "port": 6378,
        "tls": True,
        "passwordSecretRef": {"name": "redis-auth"},
        "caSecretRef": {"name": "redis-ca", "key": "server-ca.pem"},
    }
}


def _pod(isvc: InferenceService, redis: RedisEndpoint | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = build_deployment(isvc, SETTINGS, redis)["spec"]["template"]["spec"]
    return pod


def _served(isvc: InferenceService, secrets: dict[tuple[str, str], str]) -> ServingSettings:
    """What the server would read from the pod's environment, given the Secrets' contents."""
    environ: dict[str, str] = {}
    for entry in _pod(isvc)["containers"][0]["env"]:
        if "value" in entry:
            environ[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            if (ref["name"], ref["key"]) in secrets:
                environ[entry["name"]] = secrets[ref["name"], ref["key"]]
    return ServingSettings.from_env(environ)


def test_env_names_come_from_the_contract() -> None:
    names = [e["name"] for e in _pod(make_isvc(cache=TLS_EXTERNAL))["containers"][0]["env"]]
    assert all(name in {env_var(f) for f in ServingSettings.model_fields} for name in names)
    assert len(names) == len(set(names))


def test_server_reads_back_what_the_operator_meant() -> None:
    isvc = make_isvc(
        model={"uri": "gs://my-models/iris/", "format": "onnx", "name": "flowers", "version": "2"},
        cache={**TLS_EXTERNAL, "ttlSeconds": 120, "l1MaxBytes": 1024},
        batching={"maxBatchSize": 16, "maxWaitMs": 2.5},
    )
    secrets = {
        ("iris-redis", "url"): "rediss://10.0.0.3:6378/0",
        ("redis-auth", "password"): "s3cret",
    }
    served = _served(isvc, secrets)
    assert (served.model_name, served.model_version, served.model_format) == (
        "flowers",
        "2",
        "onnx",
    )
    assert served.redis_url == "rediss://10.0.0.3:6378/0"
    assert served.redis_password is None  # not in the environment: a file
    assert str(served.redis_password_file) == "/etc/memoserve/redis-auth/password"
    assert str(served.redis_ca_file) == "/etc/memoserve/redis-ca/ca.crt"
    assert (served.cache_enabled, served.cache_namespace) == (True, "ml/iris")
    assert (served.cache_ttl_seconds, served.l1_max_bytes) == (120, 1024)
    assert (served.batch_max_size, served.batch_max_wait_ms) == (16, 2.5)
    assert served.port == 8080


def test_unset_settings_keep_the_image_defaults() -> None:
    env = {e["name"] for e in _pod(make_isvc())["containers"][0]["env"]}
    for field in ("batch_max_size", "redis_timeout_ms", "log_level", "host", "l1_max_bytes"):
        assert env_var(field) not in env


def test_no_cache_means_cache_off_and_no_redis() -> None:
    served = _served(make_isvc(), {})
    assert served.cache_enabled is False
    assert served.redis_url is None


def test_redis_connection_is_never_inlined() -> None:
    env = _pod(make_isvc(cache=TLS_EXTERNAL))["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert "value" not in by_name[env_var("redis_url")]
    assert by_name[env_var("redis_url")]["valueFrom"]["secretKeyRef"] == {
        "name": "iris-redis",
        "key": "url",
    }
    # The AUTH string is never in the environment (kubectl describe, child processes).
    assert env_var("redis_password") not in by_name


def test_auth_string_is_a_file_from_the_users_secret() -> None:
    pod = _pod(make_isvc(cache=TLS_EXTERNAL))
    container = pod["containers"][0]
    # The user's own Secret, mounted directly: the operator never reads or copies it.
    (volume,) = [v for v in pod["volumes"] if v["name"] == "redis-auth"]
    assert volume["secret"] == {
        "secretName": "redis-auth",
        "items": [{"key": "password", "path": "password"}],
        "defaultMode": 0o440,
    }
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "redis-auth"]
    assert mount == {
        "name": "redis-auth",
        "mountPath": "/etc/memoserve/redis-auth",
        "readOnly": True,
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[env_var("redis_password_file")] == "/etc/memoserve/redis-auth/password"
    # Group-readable through the pod's fsGroup, the serving user's group.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_no_auth_no_auth_file() -> None:
    pod = _pod(make_isvc(cache={"external": {"host": "r"}}))
    assert not [v for v in pod["volumes"] if v["name"] == "redis-auth"]
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert env_var("redis_password_file") not in env


def test_ca_from_the_users_secret_is_mounted_where_the_env_says() -> None:
    pod = _pod(make_isvc(cache=TLS_EXTERNAL))
    (volume,) = [v for v in pod["volumes"] if v["name"] == "redis-ca"]
    assert volume["secret"]["secretName"] == "redis-ca"
    assert volume["secret"]["items"] == [{"key": "server-ca.pem", "path": "ca.crt"}]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "redis-ca"]
    assert mount == {"name": "redis-ca", "mountPath": "/etc/memoserve/redis-ca", "readOnly": True}


@pytest.mark.parametrize(
    ("cache", "password", "ca", "auth"),
    [
        ({"external": {"host": "r"}}, None, None, None),
        (
            TLS_EXTERNAL,
            SecretKey("redis-auth", "password"),
            SecretKey("redis-ca", "server-ca.pem"),
            None,
        ),
        (
            {"memorystore": {}},
            SecretKey("iris-redis", "password"),
            SecretKey("iris-redis", "ca.crt"),
            None,
        ),
        (
            {"memorystore": {"authEnabled": False, "transitEncryptionMode": "DISABLED"}},
            None,
            None,
            None,
        ),
        (
            {"existingMemorystore": {"name": "shared"}},
            SecretKey("iris-redis", "password", optional=True),
            SecretKey("iris-redis", "ca.crt", optional=True),
            None,
        ),
        # IAM or no auth: never a password; the CA with TLS.
        ({"valkey": {}}, None, SecretKey("iris-redis", "ca.crt"), None),
        ({"redisCluster": {"transitEncryptionMode": "DISABLED"}}, None, None, None),
        # Auth mode and TLS learned when the instance is read.
        (
            {"existingValkey": {"name": "shared"}},
            None,
            SecretKey("iris-redis", "ca.crt", optional=True),
            SecretKey("iris-redis", "auth", optional=True),
        ),
        (
            {"existingRedisCluster": {"name": "shared"}},
            None,
            SecretKey("iris-redis", "ca.crt", optional=True),
            SecretKey("iris-redis", "auth", optional=True),
        ),
    ],
)
def test_redis_refs_per_source(
    cache: dict[str, Any],
    password: SecretKey | None,
    ca: SecretKey | None,
    auth: SecretKey | None,
) -> None:
    refs = redis_refs(make_isvc(cache=cache))
    assert refs is not None
    assert refs.url == SecretKey("iris-redis", "url")
    assert (refs.password, refs.ca, refs.auth) == (password, ca, auth)


def _secret_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    assert secret["metadata"]["name"] == "iris-redis"
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_external_secret_holds_only_the_address() -> None:
    data = _secret_data(build_all(make_isvc(cache=TLS_EXTERNAL), SETTINGS))
    assert data == {"url": "rediss://10.0.0.3:6378/0", "host": "10.0.0.3", "port": "6378"}


def test_memorystore_secret_from_the_learned_endpoint() -> None:
    endpoint = RedisEndpoint("10.1.2.3", 6378, tls=True, password="auth", ca_cert="PEM")
    objects = build_all(make_isvc(cache={"memorystore": {}}), SETTINGS, redis=endpoint)
    assert _secret_data(objects) == {
        "url": "rediss://10.1.2.3:6378/0",
        "host": "10.1.2.3",
        "port": "6378",
        "password": "auth",
        "ca.crt": "PEM",
    }


def test_endpoint_url() -> None:
    assert RedisEndpoint("fd00::1", 6379).url == "redis://[fd00::1]:6379/0"


VALKEY = RedisEndpoint(
    "10.0.0.5", 6379, tls=True, ca_cert="PEM", engine="valkey", auth="iam", cluster=True, shards=3
)


@pytest.mark.parametrize(
    ("cache", "endpoint"),
    [
        ({"valkey": {}}, VALKEY),
        ({"existingValkey": {"name": "shared"}}, VALKEY),
        (
            {"existingRedisCluster": {"name": "shared"}},
            RedisEndpoint("10.0.0.6", 6379, engine="redis-cluster", auth="password", cluster=True),
        ),
    ],
)
def test_sharded_secret_holds_the_discovery_endpoint_and_auth_mode_never_a_password(
    cache: dict[str, Any], endpoint: RedisEndpoint
) -> None:
    data = _secret_data(build_all(make_isvc(cache=cache), SETTINGS, redis=endpoint))
    expected = {
        "url": endpoint.url,
        "host": endpoint.host,
        "port": "6379",
        "auth": endpoint.auth,
    } | ({"ca.crt": "PEM"} if endpoint.ca_cert else {})
    assert data == expected
    assert "password" not in data


@pytest.mark.parametrize(
    ("cache", "secret_auth", "served"),
    [
        ({"valkey": {}}, None, "iam"),  # decided by the spec: a plain value
        ({"valkey": {"authorizationMode": "AUTH_DISABLED"}}, None, "password"),
        ({"existingValkey": {"name": "shared"}}, "iam", "iam"),  # learned: from the Secret
        ({"existingRedisCluster": {"name": "shared"}}, "password", "password"),
        ({"existingRedisCluster": {"name": "shared"}}, None, "password"),  # not written yet
    ],
)
def test_server_reads_the_auth_mode_the_operator_meant(
    cache: dict[str, Any], secret_auth: str | None, served: str
) -> None:
    secrets = {("iris-redis", "url"): "rediss://10.0.0.5:6379/0"}
    if secret_auth is not None:
        secrets["iris-redis", "auth"] = secret_auth
    settings = _served(make_isvc(cache=cache), secrets)
    assert settings.redis_auth == served
    assert settings.redis_password is None
    assert settings.redis_password_file is None


def test_read_from_replicas_reaches_the_server() -> None:
    secrets = {("iris-redis", "url"): "rediss://10.0.0.5:6379/0"}
    isvc = make_isvc(cache={"redisCluster": {}, "readFromReplicas": True})
    assert _served(isvc, secrets).redis_read_replicas is True
    assert _served(make_isvc(cache={"redisCluster": {}}), secrets).redis_read_replicas is False
