"""Command-line options made from a settings model's fields, so that no help text is retyped.

Each field becomes ``--field-name`` (typed as the field, ``None`` when not given, so that the
environment and then the field's default apply), with the field's description, its default and
its environment variable as help. A command declared with ``**overrides`` gets them all.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from rich.markup import escape

Command = Callable[..., None]


def _option_type(annotation: Any) -> Any:
    """The field's type without None; secrets are typed in as strings."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return str if annotation is SecretStr else annotation


def option_help(name: str, field: FieldInfo, env_var: Callable[[str], str]) -> str:
    parts = [field.description or name.replace("_", " ")]
    default = field.get_default(call_default_factory=True)
    if default is not PydanticUndefined and default is not None and default != "":
        shown = default.value if hasattr(default, "value") else default
        parts.append(f"[default: {shown}]")
    parts.append(f"[env: {env_var(name)}]")
    return escape(" ".join(parts))  # typer renders help as rich markup: brackets are text


def settings_parameters(
    model: type[BaseModel], env_var: Callable[[str], str]
) -> list[inspect.Parameter]:
    """One keyword parameter per field of ``model``, annotated for typer."""
    parameters = []
    for name, field in model.model_fields.items():
        kind = _option_type(field.annotation)
        option = typer.Option(help=option_help(name, field, env_var), show_default=False)
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, option],
            )
        )
    return parameters


def with_settings_options(
    model: type[BaseModel], env_var: Callable[[str], str]
) -> Callable[[Command], Command]:
    """Give ``command(**overrides)`` one option per field of ``model`` (see the module)."""

    def decorate(command: Command) -> Command:
        parameters = settings_parameters(model, env_var)
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return command

    return decorate
