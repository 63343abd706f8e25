"""Errors of the data plane, each with the HTTP status it maps to."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class: ``status`` is the HTTP status code, ``str(self)`` the client-facing message;
    ``retry_after``, when set, the seconds a client should wait (HTTP Retry-After)."""

    status = 500
    retry_after: int | None = None


class BadRequest(InferenceError):
    """The client sent something wrong (malformed body, unknown input, bad shape...)."""

    status = 400


class ModelNotFound(InferenceError):
    status = 404


class PayloadTooLarge(InferenceError):
    status = 413


class ModelNotReady(InferenceError):
    status = 503
