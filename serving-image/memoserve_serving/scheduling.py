"""The scheduling policy of the native servers' I/O threads.

pygrpc-native and granian do their HTTP work in Rust threads and hand each request to the
event loop. On a core the loop shares with them, an I/O thread woken for each answer preempts
the loop under the default policy (CFS favours the thread that just woke); SCHED_BATCH tells
the scheduler they are throughput work, and the loop keeps running until it yields
(docs/performance.md, "gRPC on a native core"). No capability is needed to choose it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def threads_started_as_batch(what: str) -> Iterator[None]:
    """Threads this thread starts meanwhile run SCHED_BATCH (a new thread inherits its creator's
    policy); this thread's own policy is put back after. ``what`` names them in a warning."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as exc:  # a policy we may not leave (a real-time one, say): leave it be
        log.warning("%s I/O threads keep this thread's scheduling policy: %s", what, exc)
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)
