"""``memoserve run --upstream URL``: the service as a cache front for a v2 server already
running (MLServer, Triton, KServe, another memoserve...), as its front pods would be."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from memoserve_cli.run import RunError
from memoserve_serving.protocol.metadata import ModelMetadata
from memoserve_serving.upstream.connect import model_metadata, upstream_digest


@dataclass(frozen=True)
class Upstream:
    url: str
    metadata: ModelMetadata
    digest: str  # what the front's keys carry (upstream/connect.py)


def identity(url: str) -> str:
    """The model identity of a local front: the operator's is a digest of the spec; here the
    upstream is whatever listens at ``url``, so its URL names it (with its metadata)."""
    return f"memoserve-run:{url}"


def read_upstream(url: str, model: str) -> Upstream:
    """The upstream's model metadata now: a local run fails at once, in one line, rather than
    wait for a server that is not there (a front pod waits)."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise RunError(f"--upstream {url}: must start with http:// or https://")
    where = f"{url}/v2/models/{model}"
    try:
        with urllib.request.urlopen(where, timeout=10) as response:
            document = json.loads(response.read())
        metadata = model_metadata(document)
    except urllib.error.HTTPError as exc:
        raise RunError(f"--upstream: {where} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RunError(f"--upstream: cannot read {where}: {reason}") from None
    return Upstream(url, metadata, upstream_digest(identity(url), document))
