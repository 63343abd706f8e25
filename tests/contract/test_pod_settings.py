"""The spec -> serving settings mapping, and the spec questions it asks of the model.

The pods learn their Redis from Secrets the operator references (``builders.redis.redis_refs``);
the plain settings come from the contract alone. Both must tell the same story: a cache where
there are Redis references, a CA file where a CA is mounted.
"""

from __future__ import annotations

from typing import Any

import pytest

from memoserve_contract.pod_settings import (
    REDIS_CA_FILE,
    REDIS_PASSWORD_FILE,
    pod_env,
    serving_settings,
)
from memoserve_contract.settings import ServingSettings, env_var
from memoserve_operator.builders.redis import redis_refs
from tests.operator.helpers import make_isvc

CACHES: list[dict[str, Any] | None] = [
    None,
    {"enabled": False},
    {"external": {"host": "r"}},
    {"external": {"host": "r", "tls": True}},
    {"external": {"host": "r", "tls": True, "caSecretRef": {"name": "ca"}}},
    {"external": {"host": "r", "tls": False, "caSecretRef": {"name": "ca"}}},
    {"external": {"host": "r", "passwordSecretRef": {"name": "auth"}}},
    {"memorystore": {"authEnabled": False}},
    {"memorystore": {}},
    {"memorystore": {"transitEncryptionMode": "DISABLED"}},
    {"existingMemorystore": {"name": "shared"}},
    {"enabled": False, "memorystore": {}},
    {"valkey": {}},
    {"valkey": {"authorizationMode": "AUTH_DISABLED", "transitEncryptionMode": "DISABLED"}},
    {"redisCluster": {}, "readFromReplicas": True},
    {"existingValkey": {"name": "shared"}},
    {"existingRedisCluster": {"name": "projects/p/locations/l/clusters/c"}},
    {"enabled": False, "valkey": {}},
]


@pytest.mark.parametrize("cache", CACHES, ids=str)
def test_settings_and_redis_refs_agree(cache: dict[str, Any] | None) -> None:
    isvc = make_isvc(cache=cache) if cache is not None else make_isvc()
    settings = serving_settings(isvc, default_drain_seconds=5)
    refs = redis_refs(isvc)
    assert settings.cache_enabled is (refs is not None)
    expected_ca = refs is not None and refs.ca is not None
    assert (settings.redis_ca_file == REDIS_CA_FILE) is expected_ca
    assert (settings.redis_ca_file is None) is not expected_ca
    expected_auth = refs is not None and refs.password is not None
    assert (settings.redis_password_file == REDIS_PASSWORD_FILE) is expected_auth
    assert (settings.redis_password_file is None) is not expected_auth
    # The auth mode is a plain setting when the spec decides it, from the Secret when it is
    # learned by reading the instance; never both.
    plain_iam = "redis_auth" in settings.model_fields_set
    assert not (plain_iam and refs is not None and refs.auth is not None)


@pytest.mark.parametrize(
    ("spec", "ingress", "certificate"),
    [
        ({}, False, False),
        ({"ingress": {"enabled": False, "host": "a.example.com"}}, False, False),
        ({"ingress": {"enabled": True, "host": "a.example.com"}}, True, False),
        (
            {"ingress": {"enabled": True, "host": "a.example.com", "managedCertificate": True}},
            True,
            True,
        ),
        (
            {"ingress": {"enabled": False, "host": "a.example.com", "managedCertificate": True}},
            False,
            False,
        ),
    ],
)
def test_ingress_questions(spec: dict[str, Any], ingress: bool, certificate: bool) -> None:
    isvc = make_isvc(**spec)
    assert isvc.spec.ingress_enabled is ingress
    assert isvc.spec.wants_managed_certificate is certificate


def test_pod_env_reads_back_as_the_same_settings() -> None:
    isvc = make_isvc(cache={"memorystore": {}}, batching={"maxBatchSize": 8}, drainSeconds=7)
    env = pod_env(isvc, default_drain_seconds=5)
    assert ServingSettings.from_env(env) == serving_settings(isvc, default_drain_seconds=5)
    assert float(env[env_var("drain_seconds")]) == 7
    assert env[env_var("cache_namespace")] == "ml/iris"
    # Unset fields stay out: the image's defaults apply.
    assert env_var("redis_timeout_ms") not in env


def test_default_drain_applies_when_the_spec_names_none() -> None:
    assert serving_settings(make_isvc(), default_drain_seconds=11).drain_seconds == 11


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {}),  # the image's servers: nothing passed on
        ({"transports": {}}, {}),
        ({"transports": {"http": "uvicorn"}}, {"MEMOSERVE_HTTP_TRANSPORT": "uvicorn"}),
        ({"transports": {"grpc": "aio"}}, {}),  # gRPC off: no gRPC server to choose
        (
            {"transports": {"grpc": "aio"}, "grpc": {"enabled": True}},
            {"MEMOSERVE_GRPC_TRANSPORT": "aio"},
        ),
        (
            {"transports": {"http": "granian", "grpc": "native"}, "grpc": {"enabled": True}},
            {"MEMOSERVE_HTTP_TRANSPORT": "granian", "MEMOSERVE_GRPC_TRANSPORT": "native"},
        ),
    ],
    ids=str,
)
def test_transports_reach_the_pod(spec: dict[str, Any], expected: dict[str, str]) -> None:
    env = pod_env(make_isvc(**spec), default_drain_seconds=5)
    chosen = {k: v for k, v in env.items() if k.endswith("_TRANSPORT")}
    assert chosen == expected
