"""The data plane: validate -> cache lookup -> (batched) model run -> store. No HTTP in here."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from memoserve_serving.batching import Batcher, ModelCost, run_unbatched
from memoserve_serving.cache.base import AnswerCache, CacheResult
from memoserve_serving.cache.keys import RequestKeys
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.protocol.answer import Answer
from memoserve_serving.protocol.datatypes import datatype_of
from memoserve_serving.protocol.errors import InferenceError
from memoserve_serving.protocol.request import validate_outputs, validate_request
from memoserve_serving.protocol.response import encode_outputs_json, wants_binary
from memoserve_serving.protocol.types import (
    NO_PARAMETERS,
    InferenceRequest,
    InferenceResponse,
    Tensor,
)
from memoserve_serving.runtimes.base import Model


class ModelExecutionError(InferenceError):
    """The model failed on a request that passed validation: our problem, not the client's."""

    status = 500


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What the server knows about the one model it serves."""

    name: str
    version: str | None
    digest: str
    model: Model

    def metadata(self) -> dict[str, Any]:
        """v2 model metadata (GET /v2/models/{name})."""
        meta = self.model.metadata
        return {
            "name": self.name,
            "versions": [self.version] if self.version else [],
            "platform": meta.platform,
            "inputs": [_spec(t.name, t.datatype, t.shape) for t in meta.inputs],
            "outputs": [_spec(t.name, t.datatype, t.shape) for t in meta.outputs],
        }


def _project(outputs: tuple[Tensor, ...], request: InferenceRequest) -> tuple[Tensor, ...]:
    """The requested outputs, in the order asked, from the whole answer."""
    by_name = {tensor.name: tensor for tensor in outputs}
    return tuple(by_name[output.name] for output in request.outputs)


def _spec(name: str, datatype: str, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


class DataPlane:
    """Answers infer requests for one model, through the cache when there is one."""

    def __init__(
        self,
        served: ServedModel,
        *,
        cache: AnswerCache | None,
        key_namespace: str,
        metrics: ServingMetrics,
        executor: Executor,
        batcher: Batcher | None = None,
        cost: ModelCost | None = None,
    ) -> None:
        self.served = served
        self._cache = cache
        self._keys = RequestKeys(key_namespace, served.digest)
        self._metrics = metrics
        self._executor = executor
        self._batcher = batcher
        # expensive: worth coordinating misses with other replicas (the cross-replica lock)
        self._cost = cost if cost is not None else ModelCost()
        self._run_one = run_unbatched(served.model, metrics, self._cost)
        self._metadata = served.model.metadata
        self._output_types = {t.name: t.datatype for t in served.model.metadata.outputs}

    async def infer(
        self, request: InferenceRequest, *, read: bool = True, write: bool = True
    ) -> tuple[InferenceResponse, CacheResult]:
        """Answer ``request``; ``read``/``write`` False skip the cache (no-cache, no-store)."""
        cache = self._cache
        if cache is None:
            outputs = await self._validated_execute(request)
            return self._response(request, outputs, encode_outputs_json(outputs)), CacheResult.OFF
        computed: list[tuple[Answer, tuple[Tensor, ...]]] = []
        select = request.selects_outputs
        if select:
            # Checked here too: a hit never reaches the model's validation.
            validate_outputs(request, self._metadata)

        async def compute() -> bytes:
            # A selection of outputs is cached as the whole answer (see RequestKeys).
            outputs = await self._validated_execute(request, every_output=select)
            answer = Answer.of(outputs)
            computed.append((answer, outputs))  # spares unpacking what we just packed
            return answer.pack()

        key = self._keys(request)
        # Coordinating a miss with other replicas costs a Redis round trip: worth it only
        # when running the model again would cost more.
        value, result = await cache.get_or_compute(
            key, compute, read=read, write=write, share=self._cost.expensive
        )
        tensors: tuple[Tensor, ...] | None = None
        if computed:
            answer, tensors = computed[0]
        else:
            try:
                answer = Answer.unpack(value)
            except ValueError:
                # A value we cannot read (written by some other software?): answer uncached.
                self._metrics.cache_error("corrupt_value")
                tensors = await self._validated_execute(request, every_output=select)
                answer, result = Answer.of(tensors), CacheResult.ERROR
        if select:
            chosen = _project(tensors if tensors is not None else answer.tensors(), request)
            return self._response(request, chosen, None), result
        outputs_json = answer.outputs_json
        if tensors is None and (outputs_json is None or wants_binary(request)):
            tensors = answer.tensors()
        return self._response(request, tensors or (), outputs_json), result

    async def _validated_execute(
        self, request: InferenceRequest, *, every_output: bool = False
    ) -> tuple[Tensor, ...]:
        # Validation runs only where the model is about to run: an answer is cached only for a
        # request that passed it, and the key covers every field it checks (names, datatypes,
        # shapes, requested outputs) and the model digest, so a hit needs no second look.
        validate_request(request, self._metadata)
        return await self._execute(request, every_output)

    async def _execute(
        self, request: InferenceRequest, every_output: bool = False
    ) -> tuple[Tensor, ...]:
        inputs = {tensor.name: tensor.data for tensor in request.inputs}
        wanted = [] if every_output else [output.name for output in request.outputs]
        try:
            if self._batcher is not None:
                produced = await self._batcher.submit(inputs, wanted)
            else:
                loop = asyncio.get_running_loop()
                produced = await loop.run_in_executor(self._executor, self._run_one, inputs, wanted)
        except InferenceError:
            raise
        except Exception as exc:
            raise ModelExecutionError(f"model {self.served.name} failed: {exc}") from exc
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

    def _response(
        self, request: InferenceRequest, outputs: tuple[Tensor, ...], outputs_json: bytes | None
    ) -> InferenceResponse:
        served = self.served
        return InferenceResponse(
            served.name, served.version, request.id, outputs, NO_PARAMETERS, outputs_json
        )
