"""The operator/serving env contract: names derive from one place and round-trip."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memoserve_contract.settings import ModelFormat, ServingSettings, env_var


def test_env_round_trip_keeps_every_value() -> None:
    settings = ServingSettings(
        model_name="iris",
        model_uri="gs://models/iris/",
        model_format=ModelFormat.SKLEARN,
        redis_url="rediss://10.0.0.3:6378/0",
        redis_password="auth-string",  # type: ignore[arg-type]  # pydantic coerces to SecretStr
        cache_enabled=False,
        l1_max_bytes=1024,
    )
    env = settings.to_env()
    assert env[env_var("redis_password")] == "auth-string"
    assert env[env_var("cache_enabled")] == "false"
    assert ServingSettings.from_env(env) == settings


def test_env_names_have_one_prefix_and_reject_unknown_fields() -> None:
    assert env_var("model_uri") == "MEMOSERVE_MODEL_URI"
    with pytest.raises(KeyError):
        env_var("no_such_setting")


def test_overrides_win_over_environment() -> None:
    env = {
        "MEMOSERVE_MODEL_NAME": "a",
        "MEMOSERVE_MODEL_URI": "/m",
        "MEMOSERVE_MODEL_FORMAT": "onnx",
    }
    assert ServingSettings.from_env(env, model_name="b", port=None).model_name == "b"


@pytest.mark.parametrize(
    ("field", "value"),
    [("redis_url", "http://redis:6379"), ("model_format", "pickle"), ("port", "-1")],
)
def test_invalid_values_are_refused(field: str, value: str) -> None:
    env = {
        "MEMOSERVE_MODEL_NAME": "a",
        "MEMOSERVE_MODEL_URI": "/m",
        "MEMOSERVE_MODEL_FORMAT": "onnx",
    }
    env[env_var(field)] = value
    with pytest.raises(ValidationError, match=field):
        ServingSettings.from_env(env)
