"""The one interface every runtime implements."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.metadata import ModelMetadata


def only_input(inputs: Mapping[str, np.ndarray[Any, Any]], name: str) -> np.ndarray[Any, Any]:
    """The one input of a single-input model; BadRequest if the request has others."""
    if inputs.keys() != {name}:
        raise BadRequest(f"the model takes one input, {name!r}; got {sorted(inputs)}")
    return inputs[name]


class Model(abc.ABC):
    """A loaded model. ``predict`` blocks (it runs the framework) and is called from a thread."""

    metadata: ModelMetadata

    @property
    def batchable(self) -> bool:
        """True when dimension 0 of every input and output is the batch dimension."""
        return False

    @abc.abstractmethod
    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model; ``outputs`` names the wanted outputs (all of them when empty).

        Each input is an array of its datatype's dtype (``protocol.datatypes``): BYTES
        an object array of ``bytes``, BF16 an array of ``ml_dtypes.bfloat16`` (numpy has none;
        it computes and casts like float16). Each output is cast to its declared datatype
        (float to BF16: nearest-even); an undeclared one gets the datatype of its dtype.
        """
