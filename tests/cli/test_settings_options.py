"""`memoserve serve`'s options are made from ServingSettings: one per field, help from the
field's description, values typed as the field, unset when not given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from memoserve_cli.main import app
from memoserve_cli.settings_options import with_settings_options
from memoserve_contract.settings import LogFormat, ModelFormat, ServingSettings, env_var

RUNNER = CliRunner()


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def test_serve_help_lists_every_setting_with_its_description_and_env_var() -> None:
    done = RUNNER.invoke(app, ["serve", "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert done.exit_code == 0, done.output
    for name, field in ServingSettings.model_fields.items():
        (line,) = [row for row in done.output.splitlines() if f" {_flag(name)} " in row]
        assert field.description, f"ServingSettings.{name} has no description"
        assert field.description in line
        assert f"[env: {env_var(name)}]" in line


def _recorded(*args: str) -> dict[str, Any]:
    recorded: dict[str, Any] = {}
    probe = typer.Typer()

    @probe.command()
    @with_settings_options(ServingSettings, env_var)
    def serve(**overrides: Any) -> None:
        recorded.update(overrides)

    done = RUNNER.invoke(probe, list(args))
    assert done.exit_code == 0, done.output
    return recorded


def test_values_are_typed_as_the_fields_and_absent_ones_are_none() -> None:
    given = _recorded(
        "--model-format",
        "xgboost",
        "--port",
        "9000",
        "--drain-seconds",
        "0.5",
        "--no-cache-enabled",
        "--model-dir",
        "/srv/models",
        "--redis-password",
        "pw",
        "--log-format",
        "text",
    )
    assert given["model_format"] is ModelFormat.XGBOOST
    assert given["port"] == 9000
    assert given["drain_seconds"] == 0.5
    assert given["cache_enabled"] is False
    assert given["model_dir"] == Path("/srv/models")
    assert given["redis_password"] == "pw"
    assert given["log_format"] is LogFormat.TEXT
    assert given["model_name"] is None  # not given: the environment, then the default, decide
    assert set(given) == set(ServingSettings.model_fields)


def test_a_value_of_the_wrong_type_is_refused_by_name() -> None:
    probe = typer.Typer()

    @probe.command()
    @with_settings_options(ServingSettings, env_var)
    def serve(**overrides: Any) -> None:
        raise AssertionError("not reached")

    done = RUNNER.invoke(probe, ["--port", "eighty"])
    assert done.exit_code == 2
    assert "--port" in done.output
