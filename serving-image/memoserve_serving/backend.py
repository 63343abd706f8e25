"""Where a cache miss is computed: the model in this process, or a v2 server upstream.

The data plane (dataplane.py) asks a ``ModelBackend`` for the answer to a request that missed
the cache; it never knows which kind it has. ``LocalBackend`` runs the built-in runtime (in the
model thread, or through the batcher); ``upstream.UpstreamBackend`` forwards to another Open
Inference Protocol server (the cache front, docs/front.md).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from memoserve_serving.batching import Batcher, run_unbatched
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from memoserve_serving.protocol.datatypes import datatype_of
from memoserve_serving.protocol.errors import InferenceError
from memoserve_serving.protocol.metadata import ModelMetadata
from memoserve_serving.protocol.request import validate_request
from memoserve_serving.protocol.types import InferenceRequest, Tensor
from memoserve_serving.runtimes.base import Model
from memoserve_serving.tracing import INTERNAL


class ModelExecutionError(InferenceError):
    """The model failed on a request that passed validation: our problem, not the client's."""

    status = 500


class ModelBackend(abc.ABC):
    """Computes answers for the data plane."""

    metadata: ModelMetadata
    # Whether ``metadata`` is complete enough to check requests against before they are run
    # (a hit is then known to be the answer to a valid request); an upstream checks its own.
    checks_requests: bool = True
    # The span a miss's computation is traced as (tracing.py): its name and kind.
    span: tuple[str, str] = ("model run", INTERNAL)

    @abc.abstractmethod
    async def run(
        self, request: InferenceRequest, wanted: Sequence[str], *, deadline: float | None = None
    ) -> tuple[Tensor, ...]:
        """The outputs named in ``wanted`` (every output when empty), in that order.

        ``deadline``: the event loop's time by which the caller stops waiting, if it said.
        """

    async def close(self) -> None:  # noqa: B027  # most backends hold nothing to let go of
        """Let go of what the backend holds (connections)."""


class LocalBackend(ModelBackend):
    """The built-in runtime, in this process."""

    def __init__(
        self,
        model: Model,
        *,
        name: str,
        metrics: ServingMetrics,
        executor: Executor,
        batcher: Batcher | None = None,
        cost: ModelCost | None = None,
    ) -> None:
        self.metadata = model.metadata
        self._name = name
        self._executor = executor
        self._batcher = batcher
        self._run_one = run_unbatched(model, metrics, cost if cost is not None else ModelCost())
        self._output_types = {t.name: t.datatype for t in model.metadata.outputs}

    async def run(
        self, request: InferenceRequest, wanted: Sequence[str], *, deadline: float | None = None
    ) -> tuple[Tensor, ...]:
        # Validation runs only where the model is about to run: an answer is cached only for a
        # request that passed it, and the key covers every field it checks (names, datatypes,
        # shapes, requested outputs) and the model digest, so a hit needs no second look.
        validate_request(request, self.metadata)
        inputs = {tensor.name: tensor.data for tensor in request.inputs}
        try:
            if self._batcher is not None:
                produced = await self._batcher.submit(inputs, list(wanted))
            else:
                loop = asyncio.get_running_loop()
                produced = await loop.run_in_executor(
                    self._executor, self._run_one, inputs, list(wanted)
                )
        except InferenceError:
            raise
        except Exception as exc:
            raise ModelExecutionError(f"model {self._name} failed: {exc}") from exc
        return self._tensors(produced, wanted)

    def _tensors(
        self, produced: Mapping[str, np.ndarray[Any, Any]], wanted: Sequence[str]
    ) -> tuple[Tensor, ...]:
        names = wanted or [name for name in self._output_types if name in produced]
        tensors = []
        for name in names:
            array = np.asarray(produced[name])
            datatype = self._output_types.get(name) or datatype_of(array.dtype)
            tensors.append(Tensor(name, datatype, tuple(array.shape), array))
        return tuple(tensors)
