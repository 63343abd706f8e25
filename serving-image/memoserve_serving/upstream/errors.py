"""What goes wrong between the front and the upstream, as the front's clients see it."""

from __future__ import annotations

from memoserve_serving.protocol.errors import InferenceError


class UpstreamRefused(InferenceError):
    """The upstream answered 4xx: its status and its words go to the client, uncached."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UpstreamFailed(InferenceError):
    """No answer to give: the upstream failed (5xx), is unreachable, or said nonsense."""

    status = 502


class UpstreamTimeout(InferenceError):
    status = 504


class UpstreamNotReady(InferenceError):
    status = 503
    retry_after = 1


class Overloaded(InferenceError):
    """Too many misses are waiting for the upstream: shed, and say when to come back."""

    status = 503
    retry_after = 1
