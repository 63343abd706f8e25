"""Connect a cache front to its upstream: what it serves, and the name it goes by in keys.

The front cannot hash the upstream's model bytes, so its cache keys carry a digest of
``model_identity`` (the operator's: the model URI, the server's image and arguments) and of
the model metadata the upstream reports (name, versions, platform, inputs, outputs): a new
image, URI or model version is a new set of keys (docs/front.md). Until the upstream answers,
the front is not ready; it asks again with a growing pause, for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from memoserve_contract.settings import ServingSettings
from memoserve_serving.dataplane import ServedModel
from memoserve_serving.metrics import ServingMetrics
from memoserve_serving.model_cost import ModelCost
from memoserve_serving.protocol.metadata import ModelMetadata, TensorSpec
from memoserve_serving.upstream.backend import UpstreamBackend
from memoserve_serving.upstream.codec import BINARY_EXTENSION
from memoserve_serving.upstream.http1 import Http1Pool

if TYPE_CHECKING:
    from memoserve_serving.otel_tracing import Tracing

log = logging.getLogger(__name__)

FIRST_PAUSE, LONGEST_PAUSE = 0.2, 5.0
METADATA_TIMEOUT = 5.0


def model_metadata(document: Any) -> ModelMetadata:
    """v2 model metadata JSON -> ModelMetadata (missing inputs/outputs: none listed)."""
    if type(document) is not dict:
        raise ValueError("model metadata is not a JSON object")

    def specs(key: str) -> tuple[TensorSpec, ...]:
        items = document.get(key) or []
        return tuple(
            TensorSpec(str(t["name"]), str(t["datatype"]), tuple(int(d) for d in t["shape"]))
            for t in items
        )

    return ModelMetadata(specs("inputs"), specs("outputs"), str(document.get("platform") or ""))


def upstream_digest(identity: str, metadata: Any) -> str:
    """The model's name in cache keys: the operator's identity and what the upstream says."""
    reported = {key: metadata.get(key) for key in ("name", "versions", "platform")}
    reported |= {key: metadata.get(key) for key in ("inputs", "outputs")}
    canonical = orjson.dumps(
        {"identity": identity, "upstream": reported}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(b"memoserve-upstream-v1" + canonical).hexdigest()


async def connect_upstream(
    settings: ServingSettings,
    metrics: ServingMetrics,
    stack: contextlib.AsyncExitStack,
    cost: ModelCost | None = None,
    tracing: Tracing | None = None,
) -> ServedModel:
    """The served model of a front, once its upstream has answered its metadata."""
    assert settings.upstream_url is not None
    url = settings.upstream_url
    model = settings.upstream_model_name or settings.model_name
    pool = Http1Pool(url, limit=settings.upstream_max_connections)
    stack.push_async_callback(pool.close)
    document = await _metadata(pool, url, f"/v2/models/{model}")
    binary = await _serves_binary_tensors(pool, url)
    backend = UpstreamBackend(
        pool,
        url,
        model,
        model_metadata(document),
        metrics=metrics,
        timeout=settings.upstream_timeout_seconds,
        max_connections=settings.upstream_max_connections,
        max_queued=settings.upstream_max_queued,
        binary=binary,
        batch_max_rows=settings.upstream_batch_max_size,
        batch_max_bytes=settings.max_body_bytes,
        batch_concurrency=settings.upstream_batch_concurrency,
        cost=cost,
        tracing=tracing,
    )
    digest = upstream_digest(settings.model_identity, document)
    log.info(
        "upstream %s serves %s (digest %s, tensors as %s)",
        url,
        model,
        digest[:16],
        "binary" if binary else "JSON",
        extra={"model": settings.model_name, "digest": digest},
    )
    return ServedModel(settings.model_name, settings.model_version, digest, backend)


async def _serves_binary_tensors(pool: Http1Pool, url: str) -> bool:
    """Whether the upstream's server metadata lists the binary tensor data extension; JSON
    (False) when it cannot tell: every v2 server reads JSON."""
    try:
        response = await pool.request(b"GET", b"/v2", timeout=METADATA_TIMEOUT)
        extensions = orjson.loads(response.body).get("extensions") or ()
    except (OSError, TimeoutError, ValueError, AttributeError) as exc:
        log.info("upstream server metadata %s/v2: %s; sending JSON", url, exc or type(exc).__name__)
        return False
    return response.status == 200 and BINARY_EXTENSION in extensions


async def _metadata(pool: Http1Pool, url: str, path: str) -> Any:
    pause = FIRST_PAUSE
    while True:
        try:
            response = await pool.request(b"GET", path.encode(), timeout=METADATA_TIMEOUT)
            if response.status == 200:
                document = orjson.loads(response.body)
                model_metadata(document)  # readable, or ask again
                return document
            log.info("upstream metadata %s%s: HTTP %s, asking again", url, path, response.status)
        except (OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.info(
                "upstream metadata %s%s: %s, asking again", url, path, exc or type(exc).__name__
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)
