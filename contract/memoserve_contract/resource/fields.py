"""Building blocks of the InferenceService models: the camelCase base, quantities, CEL rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from memoserve_contract.quantity import QUANTITY_PATTERN, is_quantity

# A DNS-1035 label. The Service is named after the InferenceService, so its name must be one.
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def _quantity(value: object) -> int | str:
    if isinstance(value, int | str) and is_quantity(value):
        return value
    raise PydanticCustomError("quantity", "must be a quantity such as 500m, 2 or 16Gi")


# int-or-string in a structural schema: anyOf + x-kubernetes-int-or-string, as for core types.
Quantity = Annotated[
    int | str,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class SpecModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (as with
    ``kubectl apply``'s strict field validation), and parsed specs never change."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        frozen=True,
    )


def rules(*specs: tuple[str, str, str]) -> dict[str, Any]:
    """``x-kubernetes-validations`` for a model's JSON schema: (rule, message, fieldPath or "").

    The API server evaluates them on ``kubectl apply``; ``memoserve render`` evaluates the same
    rules from the generated CRD with cel-python, so both say the same thing.
    """
    return {
        "x-kubernetes-validations": [
            {"rule": rule, "message": message} | ({"fieldPath": path} if path else {})
            for rule, message, path in specs
        ]
    }
