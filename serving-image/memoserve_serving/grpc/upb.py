"""Which protobuf backend parses our messages: upb (C) is what the gRPC path is measured on.

protobuf's pure-Python backend (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``, or a platform
with no binary wheel) parses and writes every message in Python, tens of times slower. The
server still answers correctly on it, so it is not refused (a slow gRPC port beats none, and
HTTP does not use protobuf at all): it is logged as a warning at start-up, naming the cost and
the way back, and the "gRPC listening" log line names the backend.
"""

from __future__ import annotations

import logging

from google.protobuf.internal import api_implementation  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

FAST_BACKENDS = frozenset({"upb", "cpp"})


def protobuf_backend() -> str:
    """``upb``, ``cpp`` (older protobuf's C++ backend) or ``python``."""
    return str(api_implementation.Type())


def check_protobuf_backend() -> str:
    """The backend, after a warning if it is not a native one."""
    backend = protobuf_backend()
    if backend not in FAST_BACKENDS:
        log.warning(
            "protobuf runs on its %r backend: every gRPC call parses in Python, several times "
            "the CPU of the upb backend; unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION or "
            "install a protobuf wheel for this platform",
            backend,
        )
    return backend
