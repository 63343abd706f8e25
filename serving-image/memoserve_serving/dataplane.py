"""The data plane: cache lookup -> miss: the backend (the model here, or upstream) -> store.

No HTTP in here, and no knowledge of where a miss is computed (backend.py).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memoserve_serving.backend import LocalBackend, ModelBackend
from memoserve_serving.batching import Batcher
from memoserve_serving.cache.base import AnswerCache, CacheResult
from memoserve_serving.cache.keys import RequestKeys
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from memoserve_serving.protocol.answer import Answer
from memoserve_serving.protocol.blob import unpack_outputs
from memoserve_serving.protocol.errors import BadRequest
from memoserve_serving.protocol.memo import Memo
from memoserve_serving.protocol.request import validate_outputs
from memoserve_serving.protocol.response import encode_outputs_json, wants_binary
from memoserve_serving.protocol.types import (
    NO_PARAMETERS,
    InferenceRequest,
    InferenceResponse,
    Tensor,
)
from memoserve_serving.runtimes.base import Model
from memoserve_serving.tracing import CACHE_RESULT, MODEL_DIGEST

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing

# The tensors of recent cached answers, by their blob (protocol/memo.py: unpacking is a pure
# function of the bytes, and the tensors are read-only views of them). Blobs up to this size.
MEMO_MAX_BLOB_BYTES = 65536
_UNPACKED: Memo[bytes, tuple[Tensor, ...]] = Memo(256)


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What the server knows about the one model it serves."""

    name: str
    version: str | None
    digest: str
    model: Model | ModelBackend  # the built-in runtime, or a backend of its own (an upstream)

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
    try:
        return tuple(by_name[output.name] for output in request.outputs)
    except KeyError as exc:  # an upstream's answer has no such output (ours: validated before)
        missing = exc.args[0]
        raise BadRequest(f"output {missing!r}: the model's answer has no such output") from None


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
        tracing: Tracing | None = None,
    ) -> None:
        self.served = served
        self._tracing = tracing
        self._cache = cache
        self._keys = RequestKeys(key_namespace, served.digest)
        self._metrics = metrics
        # expensive: worth coordinating misses with other replicas (the cross-replica lock)
        self._cost = cost if cost is not None else ModelCost()
        model = served.model
        self.backend: ModelBackend = (
            model
            if isinstance(model, ModelBackend)
            else LocalBackend(
                model,
                name=served.name,
                metrics=metrics,
                executor=executor,
                batcher=batcher,
                cost=self._cost,
            )
        )
        self._metadata = self.backend.metadata

    async def infer(
        self,
        request: InferenceRequest,
        *,
        read: bool = True,
        write: bool = True,
        deadline: float | None = None,
    ) -> tuple[InferenceResponse, CacheResult]:
        """Answer ``request``; ``read``/``write`` False skip the cache (no-cache, no-store);
        ``deadline`` (event loop time) bounds the model's run where the backend can."""
        cache = self._cache
        if cache is None:  # e.g. a front's model tier, which the front asks for binary outputs
            outputs = await self._execute(request, deadline=deadline)
            outputs_json = None if wants_binary(request) else encode_outputs_json(outputs)
            return self._response(request, outputs, outputs_json), CacheResult.OFF
        computed: list[tuple[Answer, tuple[Tensor, ...]]] = []
        select = request.selects_outputs
        if select and self.backend.checks_requests:
            # Checked here too: a hit never reaches the model's validation.
            validate_outputs(request, self._metadata)

        async def compute() -> bytes:
            # A selection of outputs is cached as the whole answer (see RequestKeys).
            outputs = await self._execute(request, every_output=select, deadline=deadline)
            answer = Answer.of(outputs)
            computed.append((answer, outputs))  # spares unpacking what we just packed
            return answer.pack()

        key = self._keys(request)
        # Coordinating a miss with other replicas costs a Redis round trip: worth it only
        # when running the model again would cost more.
        share = self._cost.expensive
        if self._tracing is None or not self._tracing.recording():
            value, result = await cache.get_or_compute(
                key, compute, read=read, write=write, share=share
            )
        else:  # the lookup's span holds the miss's own (single-flight wait, model, store)
            with self._tracing.child_span("cache lookup") as span:
                value, result = await cache.get_or_compute(
                    key, compute, read=read, write=write, share=share
                )
                span.set_attribute(CACHE_RESULT, result.value)
                span.set_attribute(MODEL_DIGEST, self.served.digest)
        tensors: tuple[Tensor, ...] | None = None
        if computed:
            answer, tensors = computed[0]
        else:
            try:
                answer = Answer.unpack(value)
            except ValueError:
                # A value we cannot read (written by some other software?): answer uncached.
                self._metrics.cache_error("corrupt_value")
                tensors = await self._execute(request, every_output=select, deadline=deadline)
                answer, result = Answer.of(tensors), CacheResult.ERROR
        if select:
            chosen = _project(tensors if tensors is not None else answer.tensors(), request)
            return self._response(request, chosen, None), result
        outputs_json = answer.outputs_json
        if tensors is None and (outputs_json is None or wants_binary(request)):
            packed = answer.packed
            if len(packed) <= MEMO_MAX_BLOB_BYTES:
                tensors = _UNPACKED.get(packed, unpack_outputs)
            else:
                tensors = answer.tensors()
        response = self._response(request, tensors or (), outputs_json, answer.packed)
        return response, result

    async def _execute(
        self, request: InferenceRequest, every_output: bool = False, deadline: float | None = None
    ) -> tuple[Tensor, ...]:
        wanted = [] if every_output else [output.name for output in request.outputs]
        if self._tracing is None or not self._tracing.recording():
            outputs: tuple[Tensor, ...] = await self.backend.run(request, wanted, deadline=deadline)
            return outputs
        name, kind = self.backend.span
        with self._tracing.child_span(name, kind):
            return await self.backend.run(request, wanted, deadline=deadline)

    def _response(
        self,
        request: InferenceRequest,
        outputs: tuple[Tensor, ...],
        outputs_json: bytes | None,
        packed: bytes | None = None,
    ) -> InferenceResponse:
        served = self.served
        return InferenceResponse(
            served.name, served.version, request.id, outputs, NO_PARAMETERS, outputs_json, packed
        )
