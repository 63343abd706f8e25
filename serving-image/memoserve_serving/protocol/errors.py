"""Errors of the data plane, each with the HTTP status it maps to."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class: ``status`` is the HTTP status code, ``str(self)`` the client-facing message."""

    status = 500


class BadRequest(InferenceError):
    """The client sent something wrong (malformed body, unknown input, bad shape...)."""

    status = 400


class ModelNotFound(InferenceError):
    status = 404


class PayloadTooLarge(InferenceError):
    status = 413


class ModelNotReady(InferenceError):
    status = 503
